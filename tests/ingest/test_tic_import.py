"""POST /v1/networks/{code}/tic-in-network: CMS Transparency-in-Coverage files become providers,
per-group fee schedules and contracts; what cannot be priced is counted; bad files store nothing."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from service.db.models import FeeScheduleRow, ProviderRow
from service.domain.codes import npi_is_valid
from tests.factories import make_npi, network, problem, row_counts
from tests.ingest.tic_support import (
    BUNDLE_SAMPLE,
    FFS_SAMPLE,
    NO_NPI_SAMPLE,
    ein,
    group,
    import_tic,
    item,
    negotiated,
    network_contracts,
    network_prices,
    price,
    sample,
    tic_file,
)

SAMPLE_NPIS = ["1111111111", "2222222222", "3333333333", "4444444444", "5555555555"]
NPI_A, NPI_B, NPI_C = make_npi(1), make_npi(2), make_npi(3)


def report_of(
    client: TestClient, body: bytes | dict[str, object], code: str = "ACME-PPO", **params: str
) -> dict:
    response = import_tic(client, code, body, **params)
    assert response.status_code == 200, response.text
    return response.json()


def counts(report: dict) -> dict:
    return {k: v for k, v in report.items() if k not in ("network_code", "warnings")}


def provider(engine: Engine, npi: str) -> ProviderRow:
    with Session(engine) as session:
        return session.scalars(select(ProviderRow).where(ProviderRow.npi == npi)).one()


# The CMS samples ---------------------------------------------------------------------------------


def test_fee_for_service_sample(admin: TestClient, engine: Engine) -> None:
    network(admin)
    report = report_of(admin, sample(FFS_SAMPLE))
    # Group 1 prices 27447 (plain and modifier AS) and 27448 for professional billing; the two
    # institutional prices are skipped. Group 2 is referenced by no rate: no schedule for it.
    assert counts(report) == {
        "providers_created": 5, "providers_updated": 0, "providers_unchanged": 0,
        "fee_schedules": 1, "contracts_created": 5, "contracts_updated": 0, "contracts_ended": 0,
        "rates": 3, "skipped": {"institutional billing_class": 2}, "warning_count": 5,
    }  # fmt: skip
    assert all("fails the check digit" in w for w in report["warnings"])
    prices = network_prices(engine, "ACME-PPO")
    for npi in SAMPLE_NPIS:
        assert prices[(npi, "27447", "AS")] == ("amount", Decimal("123.45"))
        assert prices[(npi, "27447", "")] == ("amount", Decimal("120.45"))
        assert prices[(npi, "27448", "")] == ("amount", Decimal("12003.45"))
    assert len(prices) == 15
    # last_updated_on starts the contracts, expiration_date ends them.
    assert set(network_contracts(engine, "ACME-PPO").values()) == {(date(2020, 8, 27), date(2022, 1, 1))}
    first = provider(engine, "1111111111")
    assert (first.name, first.tin) == ("ACME Provider Group", "111111111")  # its first listing


def test_bundle_sample_is_skipped_but_its_providers_are_created(admin: TestClient, engine: Engine) -> None:
    network(admin)
    report = report_of(admin, sample(BUNDLE_SAMPLE))
    assert counts(report) == {
        "providers_created": 5, "providers_updated": 0, "providers_unchanged": 0,
        "fee_schedules": 0, "contracts_created": 0, "contracts_updated": 0, "contracts_ended": 0,
        "rates": 0, "skipped": {"bundle": 2}, "warning_count": 5,
    }  # fmt: skip
    assert network_prices(engine, "ACME-PPO") == {}


def test_no_npi_sample_institutional_only(admin: TestClient, engine: Engine) -> None:
    network(admin)
    report = report_of(admin, sample(NO_NPI_SAMPLE))
    assert counts(report) == {
        "providers_created": 1, "providers_updated": 0, "providers_unchanged": 0,
        "fee_schedules": 0, "contracts_created": 0, "contracts_updated": 0, "contracts_ended": 0,
        "rates": 0, "skipped": {"institutional billing_class": 1}, "warning_count": 1,
    }  # fmt: skip
    listed = provider(engine, "1111111111")
    assert (listed.name, listed.tin) == ("NPI 1111111111", None)  # TIN of type npi, no business name


def test_reimporting_a_sample_changes_nothing_but_the_rates_version(
    admin: TestClient, engine: Engine
) -> None:
    network(admin)
    report_of(admin, sample(FFS_SAMPLE))
    before = (network_prices(engine, "ACME-PPO"), network_contracts(engine, "ACME-PPO"))
    again = report_of(admin, sample(FFS_SAMPLE))
    assert (again["providers_created"], again["providers_unchanged"], again["rates"]) == (0, 5, 3)
    assert (again["contracts_created"], again["contracts_updated"]) == (0, 0)
    assert (network_prices(engine, "ACME-PPO"), network_contracts(engine, "ACME-PPO")) == before
    with Session(engine) as session:
        schedule = session.scalars(select(FeeScheduleRow).where(FeeScheduleRow.code.like("TIC-%"))).one()
    assert (schedule.rates_version, schedule.rate_count) == (2, 3)


def test_provider_references_after_in_network(admin: TestClient, engine: Engine) -> None:
    network(admin)
    network(admin, code="OTHER", name="Other")
    document = json.loads(sample(FFS_SAMPLE))
    references = document.pop("provider_references")
    reordered = json.dumps({**document, "provider_references": references}).encode()
    assert reordered.index(b'"in_network"') < reordered.index(b'"provider_references"')
    after = counts(report_of(admin, reordered, "OTHER"))
    before = counts(report_of(admin, sample(FFS_SAMPLE)))
    # Providers are shared between networks: the second import finds them.
    assert (after.pop("providers_created"), before.pop("providers_unchanged")) == (5, 5)
    assert (after.pop("providers_unchanged"), before.pop("providers_created")) == (0, 0)
    assert after == before
    assert network_prices(engine, "OTHER") == network_prices(engine, "ACME-PPO")


# Pricing rules -----------------------------------------------------------------------------------


def test_price_kinds_modifiers_and_skips(admin: TestClient, engine: Engine) -> None:
    network(admin)
    document = tic_file(
        [
            item("99213", [negotiated([1], price("110.00"), price("95", modifiers=["26", "GT"]))]),
            item(
                "99214",
                [negotiated([1], price("fee schedule"[:0] or "160.5", negotiated_type="fee schedule"))],
            ),
            item("99215", [negotiated([1], price("200.004", negotiated_type="derived"))]),
            item("J1100", [negotiated([1], price("70", negotiated_type="percentage"))], code_type="HCPCS"),
            item("99221", [negotiated([1], price("900", negotiated_type="per diem"))]),
            item("99222", [negotiated([1], price("900", billing_class="institutional"))]),
            item("99223", [negotiated([1], price("900", billing_class="both"))]),
            item("99224", [negotiated([1], price("900"))], arrangement="capitation"),
            item("0001", [negotiated([1], price("900"))], code_type="RC"),
            item("ABC12", [negotiated([1], price("900"))], code_type="LOCAL"),
            item("99225", [negotiated([1], price("900", modifiers=["X"]))]),
        ],
        [group(1, ([int(NPI_A)], ein("12-3456789")))],
    )
    report = report_of(admin, document)
    assert report["skipped"] == {
        "per diem": 1,
        "institutional billing_class": 1,
        "capitation": 1,
        "billing_code_type RC": 1,
        "billing_code_type LOCAL": 1,
        "billing_code_modifier not a two-character modifier": 1,
    }
    assert report["rates"] == 7
    assert network_prices(engine, "ACME-PPO") == {
        (NPI_A, "99213", ""): ("amount", Decimal("110.00")),
        (NPI_A, "99213", "26"): ("amount", Decimal("95.00")),
        (NPI_A, "99213", "GT"): ("amount", Decimal("95.00")),
        (NPI_A, "99214", ""): ("amount", Decimal("160.50")),
        (NPI_A, "99215", ""): ("amount", Decimal("200.00")),  # rounded half up, with a warning
        (NPI_A, "J1100", ""): ("percent", Decimal("0.70")),
        (NPI_A, "99223", ""): ("amount", Decimal("900.00")),  # billing_class "both" is professional too
    }
    assert any("rounded" in w for w in report["warnings"])


def test_expiration_and_effective_from(admin: TestClient, engine: Engine) -> None:
    network(admin)
    document = tic_file(
        [
            item(
                "99213",
                [
                    negotiated(
                        [1],
                        price("110", expiration="2026-06-30"),
                        price("1", expiration="2027-03-31", modifiers=["26"]),
                    )
                ],
            ),
            item("99214", [negotiated([2], price("160", expiration="9999-12-31"))]),
        ],
        [group(1, ([int(NPI_A)], ein("12-3456789"))), group(2, ([int(NPI_B)], ein("98-7654321")))],
    )
    report_of(admin, document, effective_from="2026-02-01")
    # A group's contract runs to its latest expiration_date; 9999-12-31 is open-ended.
    assert network_contracts(engine, "ACME-PPO") == {
        NPI_A: (date(2026, 2, 1), date(2027, 3, 31)),
        NPI_B: (date(2026, 2, 1), None),
    }


def test_a_newer_file_ends_the_running_contract(admin: TestClient, engine: Engine) -> None:
    network(admin)
    references = [group(1, ([int(NPI_A)], ein("12-3456789")))]
    report_of(
        admin, tic_file([item("99213", [negotiated([1], price("100", expiration="9999-12-31"))])], references)
    )
    newer = tic_file([item("99213", [negotiated([1], price("120", expiration="9999-12-31"))])], references)
    newer["last_updated_on"] = "2026-07-01"
    report = report_of(admin, newer)
    assert (report["contracts_created"], report["contracts_ended"]) == (1, 1)
    contracts = network_contracts(engine, "ACME-PPO")
    assert contracts == {NPI_A: (date(2026, 7, 1), None)} or len(contracts) == 1
    with Session(engine) as session:
        from service.db.models import ContractRow

        periods = sorted((c.effective_from, c.effective_to) for c in session.scalars(select(ContractRow)))
    assert periods == [(date(2026, 1, 1), date(2026, 6, 30)), (date(2026, 7, 1), None)]


def test_provider_in_two_groups_gets_the_lowest_and_a_warning(admin: TestClient, engine: Engine) -> None:
    network(admin)
    document = tic_file(
        [item("99213", [negotiated([7], price("70")), negotiated([3], price("30"))])],
        [
            group(7, ([int(NPI_A), int(NPI_B)], ein("12-3456789", "Seven"))),
            group(3, ([int(NPI_A)], ein("98-7654321", "Three"))),
        ],
    )
    report = report_of(admin, document)
    assert report["fee_schedules"] == 2 and report["contracts_created"] == 2
    assert any("several priced provider groups" in w for w in report["warnings"])
    prices = network_prices(engine, "ACME-PPO")
    assert prices[(NPI_A, "99213", "")] == ("amount", Decimal("30.00"))
    assert prices[(NPI_B, "99213", "")] == ("amount", Decimal("70.00"))
    # The provider's details come from its first listing in the file.
    assert (provider(engine, NPI_A).name, provider(engine, NPI_A).tin) == ("Seven", "123456789")


def test_first_price_wins_for_a_repeated_code_and_modifier(admin: TestClient, engine: Engine) -> None:
    network(admin)
    document = tic_file(
        [item("99213", [negotiated([1], price("100")), negotiated([1], price("90"))])],
        [group(1, ([int(NPI_A)], ein("12-3456789")))],
    )
    report = report_of(admin, document)
    assert report["rates"] == 1
    assert report["skipped"] == {"later price for the same group, code and modifier": 1}
    assert network_prices(engine, "ACME-PPO") == {(NPI_A, "99213", ""): ("amount", Decimal("100.00"))}


def test_tin_only_groups_and_undefined_references(admin: TestClient, engine: Engine) -> None:
    network(admin)
    document = tic_file(
        [item("99213", [negotiated([1, 2, 9], price("100"))])],
        [
            group(1, ([0], ein("12-3456789"))),  # TIN only: no provider to contract
            group(2, ([0], {"type": "npi", "value": NPI_C})),  # the TIN is an NPI: that provider
        ],
    )
    report = report_of(admin, document)
    assert report["skipped"] == {
        "provider group without NPI (TIN only)": 1,
        "reference to an undefined provider group": 1,
    }
    assert (report["providers_created"], report["fee_schedules"], report["contracts_created"]) == (1, 1, 1)
    assert network_prices(engine, "ACME-PPO") == {(NPI_C, "99213", ""): ("amount", Decimal("100.00"))}


def test_existing_providers_are_updated_from_the_file(admin: TestClient, engine: Engine) -> None:
    network(admin)
    admin.post("/v1/providers", json={"npi": NPI_A, "name": "Old name", "tin": "111111111"})
    admin.post("/v1/providers", json={"npi": NPI_B, "name": "Kept name", "tin": "222222222"})
    document = tic_file(
        [item("99213", [negotiated([1], price("100"))])],
        [
            group(
                1,
                ([int(NPI_A)], ein("12-3456789", "New name")),
                ([int(NPI_B)], {"type": "npi", "value": NPI_B}),
            )
        ],
    )
    report = report_of(admin, document)
    assert (report["providers_created"], report["providers_updated"], report["providers_unchanged"]) == (
        0,
        1,
        1,
    )
    assert (provider(engine, NPI_A).name, provider(engine, NPI_A).tin) == ("New name", "123456789")
    assert (provider(engine, NPI_B).name, provider(engine, NPI_B).tin) == ("Kept name", "222222222")
    assert all(npi_is_valid(npi) for npi in (NPI_A, NPI_B))


# Bad files: a clear error with the JSON path, and nothing stored ---------------------------------


def _valid() -> dict:
    return tic_file(
        [item("99213", [negotiated([1], price("100"))]), item("99214", [negotiated([1], price("150"))])],
        [group(1, ([int(NPI_A)], ein("12-3456789")))],
    )


def _break(path: list[str | int], value: object = KeyError) -> dict:
    document = _valid()
    target = document
    for key in path[:-1]:
        target = target[key]
    if value is KeyError:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return document


PRICE = ["in_network", 1, "negotiated_rates", 0, "negotiated_prices", 0]
PRICE_PATH = "$.in_network[1].negotiated_rates[0].negotiated_prices[0]"
GROUP = ["provider_references", 0, "provider_groups", 0]

BAD_FILES = [
    (_break([*PRICE, "negotiated_rate"], 0), f"{PRICE_PATH}.negotiated_rate", "greater than 0"),
    (_break([*PRICE, "negotiated_rate"], "150.00"), f"{PRICE_PATH}.negotiated_rate", "expected a number"),
    (_break([*PRICE, "negotiated_rate"]), f"{PRICE_PATH}.negotiated_rate", "missing required field"),
    (_break([*PRICE, "negotiated_type"], "bogus"), f"{PRICE_PATH}.negotiated_type", "not one of"),
    (_break(["in_network", 1, "billing_code"]), "$.in_network[1].billing_code", "missing required field"),
    (
        _break(["in_network", 0, "negotiated_rates"], {}),
        "$.in_network[0].negotiated_rates",
        "expected an array",
    ),
    (
        _break(["provider_references", 0, "provider_group_id"], "one"),
        "$.provider_references[0].provider_group_id",
        "expected a number",
    ),
    (
        _break([*GROUP, "npi", 0], 12345),
        "$.provider_references[0].provider_groups[0].npi[0]",
        "ten-digit NPI",
    ),
    (_break(["last_updated_on"]), "$.last_updated_on", "missing required field"),
    (_break(["last_updated_on"], "01/02/2026"), "$.last_updated_on", "not a YYYY-MM-DD date"),
    (_break(["in_network"]), "$.in_network", "missing required field"),
]


@pytest.mark.parametrize(("document", "path", "words"), BAD_FILES)
def test_bad_file_names_the_json_path_and_stores_nothing(
    admin: TestClient, engine: Engine, document: dict, path: str, words: str
) -> None:
    network(admin)
    before = row_counts(engine)
    body = problem(import_tic(admin, "ACME-PPO", document), 422, ["body", path])
    assert body["path"] == path
    assert words in body["detail"] and path in body["detail"]
    assert row_counts(engine) == before


def test_truncated_json_stores_nothing(admin: TestClient, engine: Engine) -> None:
    network(admin)
    before = row_counts(engine)
    whole = sample(FFS_SAMPLE)
    body = problem(import_tic(admin, "ACME-PPO", whole[: len(whole) * 2 // 3]), 422, ["body", "$"])
    assert "not valid JSON" in body["detail"]
    assert row_counts(engine) == before


def test_unknown_network_404_wrong_type_415(admin: TestClient) -> None:
    problem(import_tic(admin, "NOPE", sample(FFS_SAMPLE)), 404)
    network(admin)
    response = admin.post(
        "/v1/networks/ACME-PPO/tic-in-network", content=b"{}", headers={"Content-Type": "text/csv"}
    )
    problem(response, 415)


def test_a_later_contract_is_left_alone_with_a_warning(admin: TestClient, engine: Engine) -> None:
    network(admin)
    admin.post("/v1/providers", json={"npi": NPI_A, "name": "Dr. A"})
    admin.post("/v1/fee-schedules", json={"code": "OWN", "name": "Own", "rates": []})
    contract = {"network_code": "ACME-PPO", "provider_npi": NPI_A, "fee_schedule_code": "OWN"}
    assert admin.post("/v1/contracts", json={**contract, "effective_from": "2026-03-01"}).status_code == 201
    document = tic_file(
        [item("99213", [negotiated([1], price("100", expiration="9999-12-31"))])],
        [group(1, ([int(NPI_A)], ein("12-3456789")))],
    )
    report = report_of(admin, document)
    assert report["skipped"] == {"contract overlapping a later one": 1}
    assert report["contracts_created"] == 0
    assert any(w.startswith(f"NPI {NPI_A}: contract") for w in report["warnings"])
    assert network_contracts(engine, "ACME-PPO") == {NPI_A: (date(2026, 3, 1), None)}
