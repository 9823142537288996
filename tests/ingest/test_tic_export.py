"""GET /v1/networks/{code}/tic-in-network: a streamed TiC v2 file that validates against the CMS
schema and, imported again, gives the same rates."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal

import jsonschema
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from tests.factories import contract, fee_schedule, make_npi, network, problem, provider
from tests.ingest.tic_support import (
    FFS_SAMPLE,
    ein,
    group,
    import_tic,
    item,
    negotiated,
    network_contracts,
    network_prices,
    price,
    sample,
    schema,
    tic_file,
)

EXPORT = "/v1/networks/{}/tic-in-network"


def exported(client: TestClient, code: str, **params: str) -> dict:
    response = client.get(EXPORT.format(code), params=params)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    document: dict = json.loads(response.content, parse_float=Decimal)
    jsonschema.validate(document, schema())
    return document


def test_export_of_an_imported_sample_validates_and_round_trips(admin: TestClient, engine: Engine) -> None:
    network(admin)
    network(admin, code="COPY", name="Copy")
    assert import_tic(admin, "ACME-PPO", sample(FFS_SAMPLE)).status_code == 200
    response = admin.get(EXPORT.format("ACME-PPO"))
    document = json.loads(response.content)
    jsonschema.validate(document, schema())
    reimport = import_tic(admin, "COPY", response.content, effective_from="2020-08-27")
    assert reimport.status_code == 200, reimport.text
    assert reimport.json()["rates"] == 3
    assert network_prices(engine, "COPY") == network_prices(engine, "ACME-PPO")
    assert network_contracts(engine, "COPY") == network_contracts(engine, "ACME-PPO")


def test_export_of_percentages_modifiers_and_providers_without_tin(admin: TestClient, engine: Engine) -> None:
    network(admin)
    network(admin, code="COPY", name="Copy")
    npi_a, npi_b, npi_c = make_npi(1), make_npi(2), make_npi(3)
    document = tic_file(
        [
            item("99213", [negotiated([1], price("110.00"), price("95.10", modifiers=["26"]))]),
            item(
                "J1100", [negotiated([1, 2], price("72.5", negotiated_type="percentage"))], code_type="HCPCS"
            ),
            item("99214", [negotiated([2], price("100", expiration="9999-12-31"))]),
        ],
        [
            group(1, ([int(npi_a), int(npi_b)], ein("12-3456789", 'A "quoted" name'))),
            group(2, ([int(npi_c)], {"type": "npi", "value": npi_c})),
        ],
    )
    assert import_tic(admin, "ACME-PPO", document).status_code == 200
    out = exported(admin, "ACME-PPO")
    assert [i["billing_code_type"] for i in out["in_network"]] == ["CPT", "CPT", "HCPCS"]
    j1100 = out["in_network"][2]["negotiated_rates"]
    assert {p["negotiated_type"] for r in j1100 for p in r["negotiated_prices"]} == {"percentage"}
    assert {p["negotiated_rate"] for r in j1100 for p in r["negotiated_prices"]} == {Decimal("72.5")}
    tins = [g["tin"] for ref in out["provider_references"] for g in ref["provider_groups"]]
    assert {"type": "npi", "value": npi_c} in tins
    response = admin.get(EXPORT.format("ACME-PPO"))
    assert import_tic(admin, "COPY", response.content, effective_from="2026-01-01").status_code == 200
    assert network_prices(engine, "COPY") == network_prices(engine, "ACME-PPO")
    assert network_prices(engine, "COPY")[(npi_b, "J1100", "")] == ("percent", Decimal("0.725"))
    assert network_contracts(engine, "COPY") == network_contracts(engine, "ACME-PPO")


def test_export_of_reference_data_made_through_the_api(admin: TestClient) -> None:
    network(admin)
    provider(admin)
    fee_schedule(admin)
    contract(admin)
    document = exported(admin, "ACME-PPO")
    [reference] = document["provider_references"]
    assert reference["provider_groups"][0]["npi"] == [1234567893]
    prices = list(_prices(document))
    codes = {(code, p.get("billing_code_modifier", [""])[0], p["negotiated_rate"]) for code, p in prices}
    assert ("70551", "TC", Decimal("310")) in codes and ("99213", "", Decimal("110")) in codes
    assert {p["expiration_date"] for _, p in prices} == {"9999-12-31"}


def _prices(document: dict) -> Iterator[tuple[str, dict]]:
    for in_network in document["in_network"]:
        for rate in in_network["negotiated_rates"]:
            for negotiated_price in rate["negotiated_prices"]:
                yield in_network["billing_code"], negotiated_price


def test_as_of_limits_the_export_to_contracts_in_effect(admin: TestClient) -> None:
    network(admin)
    provider(admin)
    fee_schedule(admin)
    contract(admin, effective_from="2026-01-01", effective_to="2026-06-30")
    assert exported(admin, "ACME-PPO", as_of="2026-03-01")["in_network"]
    problem(admin.get(EXPORT.format("ACME-PPO"), params={"as_of": "2026-07-01"}), 409)


def test_large_network_exports_in_chunks(admin: TestClient) -> None:
    network(admin)
    npi = make_npi(5)
    codes = [f"{10000 + i}" for i in range(3000)]
    document = tic_file(
        [item(code, [negotiated([1], price(f"{100 + i}.25"))]) for i, code in enumerate(codes)],
        [group(1, ([int(npi)], ein("12-3456789")))],
    )
    assert import_tic(admin, "ACME-PPO", document).json()["rates"] == 3000
    with admin.stream("GET", EXPORT.format("ACME-PPO")) as response:
        pieces = list(response.iter_raw())
    assert len(pieces) > 1  # streamed, not one buffered body
    out = json.loads(b"".join(pieces))
    jsonschema.validate(out, schema())
    assert [i["billing_code"] for i in out["in_network"]] == codes


def test_unknown_network_404_and_empty_network_409(admin: TestClient, client: TestClient) -> None:
    problem(admin.get(EXPORT.format("NOPE")), 404)
    network(admin)
    problem(admin.get(EXPORT.format("ACME-PPO")), 409)
    problem(client.get(EXPORT.format("ACME-PPO")), 401)
