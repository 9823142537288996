"""A network's contracts and rates as a CMS Transparency-in-Coverage in-network-rates file (v2).

Written as a stream of small byte chunks from server-side cursors: one fee schedule is one
provider group (provider_group_id = the schedule's id), every code one `in_network` item with a
negotiated rate per schedule. Only the per-schedule expiration dates are held in memory.
"""

from __future__ import annotations

import json
from collections.abc import Generator, Iterator
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, Engine, and_, exists, func, or_, select

from ..db.models import ContractRow, FeeScheduleRateRow, NetworkRow, ProviderRow

OPEN_ENDED = "9999-12-31"
REPORTING_ENTITY_TYPE = "health insurance issuer"
SCHEMA_VERSION = "2.0.0"
_FLUSH_BYTES = 64 * 1024


def network_has_rates(conn: Connection, network_id: int, as_of: date | None) -> bool:
    return bool(
        conn.execute(
            select(
                exists().where(
                    FeeScheduleRateRow.fee_schedule_id.in_(_schedule_ids(network_id, as_of)),
                )
            )
        ).scalar()
    )


def _contracts_in(network_id: int, as_of: date | None) -> Any:
    condition = ContractRow.network_id == network_id
    if as_of is not None:
        condition = and_(
            condition,
            ContractRow.effective_from <= as_of,
            or_(ContractRow.effective_to.is_(None), ContractRow.effective_to >= as_of),
        )
    return condition


def _schedule_ids(network_id: int, as_of: date | None) -> Any:
    return select(ContractRow.fee_schedule_id).where(_contracts_in(network_id, as_of)).distinct()


def tic_in_network_file(engine: Engine, network_id: int, as_of: date | None, today: date) -> Iterator[bytes]:
    """The file, in chunks of about 64 KiB, read in one consistent snapshot."""
    with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            conn = conn.execution_options(isolation_level="REPEATABLE READ", stream_results=True)
        with conn.begin():
            buffer: list[str] = []
            size = 0
            for piece in _document(conn, network_id, as_of, today):
                buffer.append(piece)
                size += len(piece)
                if size >= _FLUSH_BYTES:
                    yield "".join(buffer).encode()
                    buffer, size = [], 0
            yield "".join(buffer).encode()


def _document(conn: Connection, network_id: int, as_of: date | None, today: date) -> Iterator[str]:
    network_name = conn.execute(select(NetworkRow.name).where(NetworkRow.id == network_id)).scalar_one()
    header = {
        "reporting_entity_name": network_name,
        "reporting_entity_type": REPORTING_ENTITY_TYPE,
        "last_updated_on": today.isoformat(),
        "version": SCHEMA_VERSION,
    }
    yield json.dumps(header)[:-1] + ', "provider_references": ['
    expirations = yield from _provider_references(conn, network_id, network_name, as_of)
    yield '], "in_network": ['
    yield from _in_network(conn, network_id, as_of, expirations, str(today.year))
    yield "]}"


def _provider_references(
    conn: Connection, network_id: int, network_name: str, as_of: date | None
) -> Generator[str, None, dict[int, str]]:
    """One reference per fee schedule; its providers grouped by TIN. Returns schedule -> expiration."""
    rows = conn.execute(
        select(
            ContractRow.fee_schedule_id,
            func.max(ContractRow.effective_to),
            func.count(ContractRow.effective_to) < func.count(),  # some contract is open-ended
            ProviderRow.npi,
            ProviderRow.tin,
            ProviderRow.name,
        )
        .join(ProviderRow, ProviderRow.id == ContractRow.provider_id)
        .where(_contracts_in(network_id, as_of))
        .group_by(ContractRow.fee_schedule_id, ProviderRow.npi, ProviderRow.tin, ProviderRow.name)
        .order_by(ContractRow.fee_schedule_id, ProviderRow.tin, ProviderRow.npi)
    )
    expirations: dict[int, str] = {}
    schedule: int | None = None
    tin_group: tuple[str, ...] | None = None
    for fee_schedule_id, effective_to, open_ended, npi, tin, name in rows:
        expiry = OPEN_ENDED if open_ended or effective_to is None else effective_to.isoformat()
        if fee_schedule_id != schedule:
            if schedule is not None:
                yield "]}]}, "
            schedule, tin_group = fee_schedule_id, None
            expirations[fee_schedule_id] = expiry
            yield (
                f'{{"provider_group_id": {fee_schedule_id}, '
                f'"network_name": {json.dumps([network_name])}, "provider_groups": ['
            )
        expirations[fee_schedule_id] = max(expirations[fee_schedule_id], expiry)
        # Providers without a TIN are listed under their own NPI (TiC tin type "npi").
        key = ("ein", tin) if tin else ("npi", npi)
        if key != tin_group:
            if tin_group is not None:
                yield "]}, "
            tin_group = key
            tin_json = (
                {"type": "ein", "value": tin, "business_name": name} if tin else {"type": "npi", "value": npi}
            )
            yield f'{{"tin": {json.dumps(tin_json)}, "npi": [{npi}'
        else:
            yield f", {npi}"
    if schedule is not None:
        yield "]}]}"
    return expirations


def _in_network(
    conn: Connection, network_id: int, as_of: date | None, expirations: dict[int, str], version: str
) -> Iterator[str]:
    rows = conn.execute(
        select(
            FeeScheduleRateRow.procedure_code,
            FeeScheduleRateRow.fee_schedule_id,
            FeeScheduleRateRow.modifier,
            FeeScheduleRateRow.allowed_amount,
            FeeScheduleRateRow.percent_of_billed,
        )
        .where(FeeScheduleRateRow.fee_schedule_id.in_(_schedule_ids(network_id, as_of)))
        .order_by(
            FeeScheduleRateRow.procedure_code,
            FeeScheduleRateRow.fee_schedule_id,
            FeeScheduleRateRow.modifier,
        )
    )
    code: str | None = None
    schedule: int | None = None
    for procedure_code, fee_schedule_id, modifier, amount, percent in rows:
        if procedure_code != code:
            if code is not None:
                yield "]}]}, "
            code, schedule = procedure_code, None
            yield json.dumps(_item_head(procedure_code, version))[:-1] + ', "negotiated_rates": ['
        if fee_schedule_id != schedule:
            if schedule is not None:
                yield "]}, "
            schedule = fee_schedule_id
            yield f'{{"provider_references": [{fee_schedule_id}], "negotiated_prices": ['
        else:
            yield ", "
        yield _price(modifier, amount, percent, expirations[fee_schedule_id])
    if code is not None:
        yield "]}]}"


def _item_head(procedure_code: str, version: str) -> dict[str, str]:
    code_type = "HCPCS" if procedure_code[0].isalpha() else "CPT"
    return {
        "negotiation_arrangement": "ffs",
        "name": f"{code_type} {procedure_code}",
        "billing_code_type": code_type,
        "billing_code_type_version": version,
        "billing_code": procedure_code,
        "description": f"{code_type} {procedure_code}",
    }


def _price(modifier: str, amount: Decimal | None, percent: Decimal | None, expiration: str) -> str:
    if amount is not None:
        negotiated_type, rate = "negotiated", amount
    else:
        assert percent is not None
        negotiated_type, rate = "percentage", percent * 100  # TiC states percentages as 70, not 0.70
    price: dict[str, Any] = {
        "negotiated_type": negotiated_type,
        "expiration_date": expiration,
        # Rates hold for every place of service: CMS's code for that is CSTM-00.
        "service_code": ["CSTM-00"],
        "billing_class": "professional",
        "setting": "both",
    }
    if modifier:
        price["billing_code_modifier"] = [modifier]
    # The rate is written as its exact decimal text: json.dumps knows only floats.
    return json.dumps(price)[:-1] + f', "negotiated_rate": {format(rate.normalize(), "f")}}}'
