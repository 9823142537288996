"""Helpers for the TiC tests: the CMS samples, small hand-made files, and reading back what an
import stored (per network: NPI, code and modifier -> price)."""

from __future__ import annotations

import copy
import json
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import Engine, select

from service.db.models import ContractRow, FeeScheduleRateRow, NetworkRow, ProviderRow

Json = dict[str, Any]

SAMPLES = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "cms-tic"
FFS_SAMPLE = "in-network-rates-fee-for-service-single-plan-sample.json"
BUNDLE_SAMPLE = "in-network-rates-bundle-single-plan-sample.json"
NO_NPI_SAMPLE = "in-network-rates-no-npi.json"
JSON_BODY = {"Content-Type": "application/json"}


def sample(name: str) -> bytes:
    path = SAMPLES / name
    if not path.exists():
        pytest.skip(f"shared CMS TiC samples not found at {SAMPLES.resolve()} (shared/ beside the clone)")
    return path.read_bytes()


def schema() -> Json:
    loaded: Json = json.loads(sample("schema-in-network-rates.json"))
    return loaded


def import_tic(client: TestClient, network: str, body: bytes | Json, **params: str) -> Response:
    content = body if isinstance(body, bytes) else dumps(body)
    return client.post(
        f"/v1/networks/{network}/tic-in-network", content=content, headers=JSON_BODY, params=params
    )


def price(
    rate: str | int,
    *,
    negotiated_type: str = "negotiated",
    billing_class: str = "professional",
    expiration: str = "2027-12-31",
    modifiers: list[str] | None = None,
) -> Json:
    """A negotiated price; rate is decimal text so the JSON number is exact."""
    body: Json = {
        "negotiated_type": negotiated_type,
        "negotiated_rate": Decimal(str(rate)),
        "expiration_date": expiration,
        "billing_class": billing_class,
        "setting": "outpatient",
        "service_code": ["11"],
    }
    if modifiers:
        body["billing_code_modifier"] = modifiers
    return body


def item(code: str, rates: list[Json], *, arrangement: str = "ffs", code_type: str = "CPT") -> Json:
    return {
        "negotiation_arrangement": arrangement,
        "name": f"code {code}",
        "billing_code_type": code_type,
        "billing_code_type_version": "2026",
        "billing_code": code,
        "description": f"code {code}",
        "negotiated_rates": rates,
    }


def negotiated(groups: list[int], *prices: Json) -> Json:
    return {"provider_references": groups, "negotiated_prices": list(prices)}


def group(group_id: int, *providers: tuple[list[int], Json]) -> Json:
    return {
        "provider_group_id": group_id,
        "network_name": ["Test network"],
        "provider_groups": [{"npi": npis, "tin": tin} for npis, tin in providers],
    }


def ein(value: str, name: str = "Test Group") -> Json:
    return {"type": "ein", "value": value, "business_name": name}


def tic_file(in_network: list[Json], references: list[Json], *, references_first: bool = True) -> Json:
    head: Json = {
        "reporting_entity_name": "Test Payer",
        "reporting_entity_type": "health insurance issuer",
        "last_updated_on": "2026-01-01",
        "version": "2.0.0",
    }
    parts = [("provider_references", references), ("in_network", in_network)]
    if not references_first:
        parts.reverse()
    return {**head, **dict(parts)}


def dumps(document: Json) -> bytes:
    """JSON with Decimal values written exactly (as TiC numbers)."""
    marker = "__decimal__"

    def encode(value: Any) -> Any:
        if isinstance(value, Decimal):
            return f"{marker}{value}{marker}"
        raise TypeError(type(value))

    text = json.dumps(copy.deepcopy(document), default=encode)
    return text.replace(f'"{marker}', "").replace(f'{marker}"', "").encode()


def network_prices(
    engine: Engine, network_code: str
) -> dict[tuple[str, str, str], tuple[str, Decimal | None]]:
    """(npi, code, modifier) -> ("amount" | "percent", value) over the network's contracts."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(
                ProviderRow.npi,
                FeeScheduleRateRow.procedure_code,
                FeeScheduleRateRow.modifier,
                FeeScheduleRateRow.allowed_amount,
                FeeScheduleRateRow.percent_of_billed,
            )
            .select_from(ContractRow)
            .join(NetworkRow, NetworkRow.id == ContractRow.network_id)
            .join(ProviderRow, ProviderRow.id == ContractRow.provider_id)
            .join(FeeScheduleRateRow, FeeScheduleRateRow.fee_schedule_id == ContractRow.fee_schedule_id)
            .where(NetworkRow.code == network_code)
        ).all()
    return {
        (npi, code, modifier): ("amount", amount) if amount is not None else ("percent", percent)
        for npi, code, modifier, amount, percent in rows
    }


def network_contracts(engine: Engine, network_code: str) -> dict[str, tuple[date, date | None]]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(ProviderRow.npi, ContractRow.effective_from, ContractRow.effective_to)
            .join(ProviderRow, ProviderRow.id == ContractRow.provider_id)
            .join(NetworkRow, NetworkRow.id == ContractRow.network_id)
            .where(NetworkRow.code == network_code)
        ).all()
    return {npi: (start, end) for npi, start, end in rows}
