"""CMS Transparency-in-Coverage in-network-rates import (schema v2), streamed.

The file is parsed by ijson's C backend as it arrives, one `in_network` or
`provider_references` item at a time, and every priced row is staged in TEMP tables of one
transaction. Because provider groups are resolved in SQL at the end, `provider_references` may
come before or after `in_network` and neither is ever held in memory as a whole.

What the import makes of a file (docs/decisions.md, "Ingest"):
- every NPI in `provider_references` becomes a provider (created, or name and TIN updated);
- each provider group with priced rates becomes one fee schedule, coded from the network, the
  plan and the group id, whose rates the import replaces;
- each provider gets a contract in the network with the schedule of its lowest-numbered group,
  from `effective_from` (default: the file's `last_updated_on`) to the group's latest
  `expiration_date` (9999-12-31: open-ended);
- `negotiated` / `fee schedule` / `derived` prices become fixed amounts and `percentage` a
  percent of billed; what cannot be priced is skipped and counted by reason.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Any, NamedTuple

import ijson
from sqlalchemy import Connection, Engine, insert, select, text, update

from ..db.models import ContractRow, FeeScheduleRow, NetworkRow, ProviderRow
from ..domain.codes import MODIFIER_RE, PROCEDURE_CODE_RE, npi_is_valid
from ..domain.money import round_cents
from ..metrics import INGEST_ROWS
from .staging import Column, StagingTable, begin_ingest, end_ingest, money_column, rate_column

log = logging.getLogger("service.ingest.tic")

try:
    import ijson.backends.yajl2_c as ijson_backend

    IJSON_BACKEND = "yajl2_c"
except ImportError:  # pragma: no cover - depends on the installed wheel
    import ijson.backends.python as ijson_backend

    IJSON_BACKEND = "python"
    log.warning(
        "ijson's C backend (yajl2_c) is not available: TiC imports use the pure-Python parser, ~20x slower"
    )

OPEN_ENDED = "9999-12-31"
BATCH_ROWS = 20_000
MAX_WARNINGS = 100
FIXED_AMOUNT_TYPES = frozenset({"negotiated", "fee schedule", "derived"})
NEGOTIATED_TYPES = FIXED_AMOUNT_TYPES | {"percentage", "per diem"}
ARRANGEMENTS = frozenset({"ffs", "bundle", "capitation"})
BILLING_CLASSES = frozenset({"professional", "institutional", "both"})
SETTINGS = frozenset({"inpatient", "outpatient", "both"})
CODE_TYPES = frozenset(
    {"CPT", "HCPCS", "ICD", "MS-DRG", "R-DRG", "S-DRG", "APS-DRG", "AP-DRG", "APR-DRG", "APC", "NDC",
     "HIPPS", "LOCAL", "EAPG", "CDT", "RC", "CSTM-ALL"}
)  # fmt: skip
_DATE_RE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
_EIN_RE = re.compile(r"^[0-9]{2}-?[0-9]{7}$")
_REQUIRED_TOP_LEVEL = ("reporting_entity_name", "reporting_entity_type", "last_updated_on", "version")
_PLAN_FIELDS = ("plan_name", "plan_id_type", "plan_id", "plan_market_type", "issuer_name")
# A percentage is stored as a multiplier of billed (70 -> 0.70) in a column with six places.
_PERCENT_PLACES = Decimal("0.0001")
_MAX_PERCENT = Decimal("99900")
_MAX_AMOUNT = Decimal("1e10")  # Numeric(12, 2)
_NO_MODIFIER = ("",)

# (modifier, allowed_amount, percent_of_billed, expiration_date) for one staged price row.
PriceRow = tuple[str, Decimal | None, Decimal | None, str]


class TicFormatError(Exception):
    """The file breaks the schema (or is not JSON): where, as a JSON path, and why."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
        self.message = message


class UnknownNetwork(Exception):
    pass


@dataclass
class TicReport:
    network_code: str
    providers_created: int = 0
    providers_updated: int = 0
    providers_unchanged: int = 0
    fee_schedules: int = 0
    contracts_created: int = 0
    contracts_updated: int = 0
    contracts_ended: int = 0
    rates: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    warnings: list[str] = field(default_factory=list)
    warning_count: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {**{k: v for k, v in vars(self).items() if k != "skipped"}, "skipped": dict(self.skipped)}

    def warn(self, message: str) -> None:
        self.warning_count += 1
        if len(self.warnings) < MAX_WARNINGS:
            self.warnings.append(message)


# --- validation of one parsed item --------------------------------------------------------------


def _get(obj: dict[str, Any], key: str, path: str) -> Any:
    if key not in obj:
        raise TicFormatError(f"{path}.{key}", "missing required field")
    return obj[key]


def _object(value: Any, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise TicFormatError(path, f"expected an object, found {_kind(value)}")
    return value


def _array(value: Any, path: str, *, min_items: int = 1) -> list[Any]:
    if not isinstance(value, list):
        raise TicFormatError(path, f"expected an array, found {_kind(value)}")
    if len(value) < min_items:
        raise TicFormatError(path, f"expected at least {min_items} item(s)")
    return value


def _string(value: Any, path: str) -> str:
    if not isinstance(value, str) or not value:
        raise TicFormatError(path, f"expected a non-empty string, found {_kind(value)}")
    return value


def _number(value: Any, path: str) -> int | Decimal:
    if isinstance(value, bool) or not isinstance(value, int | Decimal | float):
        raise TicFormatError(path, f"expected a number, found {_kind(value)}")
    return Decimal(str(value)) if isinstance(value, float) else value


def _enum(value: Any, path: str, allowed: frozenset[str]) -> str:
    if not isinstance(value, str) or value not in allowed:
        raise TicFormatError(path, f"{value!r} is not one of {sorted(allowed)}")
    return str(value)


def _iso_date(value: Any, path: str) -> str:
    text_ = _string(value, path)
    if not _DATE_RE.match(text_):
        raise TicFormatError(path, f"{text_!r} is not a YYYY-MM-DD date")
    try:
        date.fromisoformat(text_)
    except ValueError:
        raise TicFormatError(path, f"{text_!r} is not a calendar date") from None
    return text_


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | Decimal | float):
        return "a number"
    if isinstance(value, str):
        return "a string" if value else "an empty string"
    return "an array" if isinstance(value, list) else "an object"


# --- staging -------------------------------------------------------------------------------------

_GROUP_COLUMNS = (
    Column("seq", "BIGINT", "INTEGER"),
    Column("group_id", "BIGINT", "INTEGER"),
    Column("npi", "VARCHAR(10)", "TEXT"),
    Column("tin", "VARCHAR(9)", "TEXT"),
    Column("name", "VARCHAR(200)", "TEXT"),
)
_REF_COLUMNS = (Column("set_id", "BIGINT", "INTEGER"), Column("group_id", "BIGINT", "INTEGER"))
_PRICE_COLUMNS = (
    Column("seq", "BIGINT", "INTEGER"),
    Column("set_id", "BIGINT", "INTEGER"),
    Column("procedure_code", "VARCHAR(5)", "TEXT"),
    Column("modifier", "VARCHAR(2)", "TEXT"),
    money_column("allowed_amount"),
    rate_column("percent_of_billed"),
    Column("expiration", "VARCHAR(10)", "TEXT"),  # ISO text: MAX() compares it the same everywhere
)


class _Buffer:
    def __init__(self, table: StagingTable) -> None:
        self.table = table
        self.rows: list[tuple[Any, ...]] = []

    def add(self, row: tuple[Any, ...]) -> None:
        self.rows.append(row)
        if len(self.rows) >= BATCH_ROWS:
            self.flush()

    def flush(self) -> None:
        self.table.write(self.rows)
        self.rows = []


class _Metadata:
    """Collects the top-level scalars from parse events; stops as soon as it has them all."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}
        self.done = False
        self._wanted = set(_REQUIRED_TOP_LEVEL) | set(_PLAN_FIELDS)

    def send(self, event: tuple[str, str, Any]) -> None:
        prefix, kind, value = event
        if prefix in self._wanted and kind not in ("map_key", "end_map", "end_array"):
            self.values[prefix] = value if not kind.startswith("start_") else [kind]
            self.done = self._wanted.issubset(self.values)


class TicReader:
    """Parses a TiC file fed in chunks and stages what it can price. Raises TicFormatError."""

    def __init__(self, conn: Connection, report: TicReport) -> None:
        self.report = report
        self.metadata = _Metadata()
        self._in_network: Any = ijson.sendable_list()
        self._references: Any = ijson.sendable_list()
        self._pipelines = [
            ijson_backend.items_coro(self._in_network, "in_network.item"),
            ijson_backend.items_coro(self._references, "provider_references.item"),
        ]
        self._metadata_pipeline: Any = ijson_backend.parse_coro(self.metadata)
        self.in_network_items = 0
        self.reference_items = 0
        self.bytes_read = 0
        self._seq = 0
        self._set_id = 0
        self._warned_npis: set[str] = set()
        self._rounded = 0
        self.tin_only_groups: set[int] = set()  # defined, but with no provider to contract
        self._valid_dates: set[str] = set()  # expiration dates already checked
        self.groups = _Buffer(StagingTable(conn, "staged_tic_groups", _GROUP_COLUMNS, ("seq",)))
        self.refs = _Buffer(StagingTable(conn, "staged_tic_refs", _REF_COLUMNS))
        self.prices = _Buffer(StagingTable(conn, "staged_tic_prices", _PRICE_COLUMNS))

    def feed(self, chunk: bytes) -> None:
        try:
            for pipeline in self._pipelines:
                pipeline.send(chunk)
            if self._metadata_pipeline is not None:
                self._metadata_pipeline.send(chunk)
                if self.metadata.done:
                    self._metadata_pipeline = None
        except ijson.JSONError as error:
            raise self._syntax_error(error) from None
        self.bytes_read += len(chunk)
        self._drain()

    def close(self) -> None:
        try:
            for pipeline in self._pipelines:
                pipeline.close()
            if self._metadata_pipeline is not None:
                self._metadata_pipeline.close()
        except ijson.JSONError as error:
            raise self._syntax_error(error) from None
        self._drain()
        for buffer in (self.groups, self.refs, self.prices):
            buffer.flush()
            buffer.table.analyze()
        self._check_top_level()
        if self._rounded:
            self.report.warn(f"{self._rounded} negotiated rate(s) had fractions of a cent: rounded half up")

    def _syntax_error(self, error: Exception) -> TicFormatError:
        where = f"in_network[{self.in_network_items}]" if self.in_network_items else "the document"
        return TicFormatError(
            "$", f"not valid JSON near byte {self.bytes_read} (while reading {where}): {error}"
        )

    def _drain(self) -> None:
        for item in self._in_network:
            self._in_network_item(item, f"$.in_network[{self.in_network_items}]")
            self.in_network_items += 1
        del self._in_network[:]
        for item in self._references:
            self._provider_reference(item, f"$.provider_references[{self.reference_items}]")
            self.reference_items += 1
        del self._references[:]

    def _check_top_level(self) -> None:
        values = self.metadata.values
        for key in _REQUIRED_TOP_LEVEL:
            if key not in values:
                raise TicFormatError(f"$.{key}", "missing required field")
            _string(values[key], f"$.{key}")
        _iso_date(values["last_updated_on"], "$.last_updated_on")
        if self.in_network_items == 0:
            raise TicFormatError("$.in_network", "missing required field (or it has no items)")

    # in_network ---------------------------------------------------------------------------------

    def _in_network_item(self, item: Any, path: str) -> None:
        obj = _object(item, path)
        arrangement = _enum(
            _get(obj, "negotiation_arrangement", path), f"{path}.negotiation_arrangement", ARRANGEMENTS
        )
        code_type = _enum(_get(obj, "billing_code_type", path), f"{path}.billing_code_type", CODE_TYPES)
        code = _string(_get(obj, "billing_code", path), f"{path}.billing_code")
        for key in ("name", "billing_code_type_version", "description"):
            _string(_get(obj, key, path), f"{path}.{key}")
        skip = None
        if arrangement != "ffs":
            skip = arrangement  # bundle, capitation: no per-code price to take
        elif code_type not in ("CPT", "HCPCS"):
            skip = f"billing_code_type {code_type}"
        elif not PROCEDURE_CODE_RE.match(code):
            skip = "billing_code not a CPT/HCPCS code"
        rates = _array(_get(obj, "negotiated_rates", path), f"{path}.negotiated_rates")
        for index, negotiated in enumerate(rates):
            self._negotiated_rate(negotiated, f"{path}.negotiated_rates[{index}]", code, skip)

    def _negotiated_rate(self, value: Any, path: str, code: str, skip: str | None) -> None:
        references = value.get("provider_references") if type(value) is dict else None
        if type(references) is list and references and all(type(r) is int for r in references):
            group_ids: list[int] = references
        else:  # the slow path names what is wrong
            obj = _object(value, path)
            references = _array(_get(obj, "provider_references", path), f"{path}.provider_references")
            group_ids = [
                _group_id(ref, f"{path}.provider_references[{i}]") for i, ref in enumerate(references)
            ]
        prices = _array(_get(value, "negotiated_prices", path), f"{path}.negotiated_prices")
        set_id = None
        for index, price in enumerate(prices):
            rows = self._price_fast(price, skip)
            if rows is None:
                rows = self._price(price, f"{path}.negotiated_prices[{index}]", skip)
            if not rows:
                continue
            if set_id is None:
                self._set_id += 1
                set_id = self._set_id
                for group_id in group_ids:
                    self.refs.add((set_id, group_id))
            for modifier, amount, percent, expiration in rows:
                self._seq += 1
                self.prices.add((self._seq, set_id, code, modifier, amount, percent, expiration))

    def _price_fast(self, obj: Any, skip: str | None) -> list[PriceRow] | None:
        """_price for a well-formed price, without building paths; None: take the slow path."""
        if type(obj) is not dict:
            return None
        negotiated_type = obj.get("negotiated_type")
        billing_class = obj.get("billing_class")
        setting = obj.get("setting")
        rate: Any = obj.get("negotiated_rate")
        expiration = obj.get("expiration_date")
        modifiers = obj.get("billing_code_modifier", _NO_MODIFIER)
        if not (
            type(negotiated_type) is str
            and negotiated_type in NEGOTIATED_TYPES
            and type(billing_class) is str
            and billing_class in BILLING_CLASSES
            and type(setting) is str
            and setting in SETTINGS
            and type(rate) in (int, Decimal)
            and rate > 0
            and type(expiration) is str
            and expiration in self._valid_dates
            and (billing_class != "professional" or type(obj.get("service_code")) is list)
            and (modifiers is _NO_MODIFIER or (type(modifiers) is list and modifiers and all(
                type(m) is str and m for m in modifiers)))
        ):  # fmt: skip
            return None
        return self._rows(negotiated_type, billing_class, modifiers, Decimal(rate), expiration, skip)

    def _price(self, value: Any, path: str, skip: str | None) -> list[PriceRow]:
        """The rows one negotiated price gives (one per modifier), or none when it is skipped."""
        obj = _object(value, path)
        negotiated_type = _enum(
            _get(obj, "negotiated_type", path), f"{path}.negotiated_type", NEGOTIATED_TYPES
        )
        billing_class = _enum(_get(obj, "billing_class", path), f"{path}.billing_class", BILLING_CLASSES)
        _enum(_get(obj, "setting", path), f"{path}.setting", SETTINGS)
        rate = _number(_get(obj, "negotiated_rate", path), f"{path}.negotiated_rate")
        if rate <= 0:
            raise TicFormatError(f"{path}.negotiated_rate", f"must be greater than 0, found {rate}")
        expiration = _iso_date(_get(obj, "expiration_date", path), f"{path}.expiration_date")
        if len(self._valid_dates) < 10_000:
            self._valid_dates.add(expiration)
        if billing_class == "professional":
            _array(_get(obj, "service_code", path), f"{path}.service_code", min_items=0)
        modifiers: Sequence[str] = _NO_MODIFIER
        if "billing_code_modifier" in obj:
            modifiers = [
                _string(m, f"{path}.billing_code_modifier[{i}]")
                for i, m in enumerate(_array(obj["billing_code_modifier"], f"{path}.billing_code_modifier"))
            ]
        return self._rows(negotiated_type, billing_class, modifiers, Decimal(rate), expiration, skip)

    def _rows(
        self,
        negotiated_type: str,
        billing_class: str,
        modifiers: Sequence[str],
        rate: Decimal,
        expiration: str,
        skip: str | None,
    ) -> list[PriceRow]:
        reason = skip or _unpriceable(negotiated_type, billing_class, modifiers)
        if reason:
            self.report.skipped[reason] += 1
            return []
        amount, percent = self._amounts(negotiated_type, rate)
        if amount is None and percent is None:
            return []
        return [(m, amount, percent, expiration) for m in modifiers]

    def _amounts(self, negotiated_type: str, rate: Decimal) -> tuple[Decimal | None, Decimal | None]:
        if negotiated_type in FIXED_AMOUNT_TYPES:
            if rate >= _MAX_AMOUNT or round_cents(rate) == 0:
                self.report.skipped["amount out of range"] += 1
                return None, None
            amount = round_cents(rate)
            if amount != rate:
                self._rounded += 1
            return amount, None
        if rate > _MAX_PERCENT or rate != rate.quantize(_PERCENT_PLACES):
            self.report.skipped["percentage out of range or with more than 4 decimals"] += 1
            return None, None
        return None, rate / 100

    # provider_references --------------------------------------------------------------------------

    def _provider_reference(self, item: Any, path: str) -> None:
        obj = _object(item, path)
        group_id = _group_id(_get(obj, "provider_group_id", path), f"{path}.provider_group_id")
        names = _array(_get(obj, "network_name", path), f"{path}.network_name", min_items=0)
        for index, name in enumerate(names):
            _string(name, f"{path}.network_name[{index}]")
        groups = _array(_get(obj, "provider_groups", path), f"{path}.provider_groups")
        for index, group in enumerate(groups):
            self._provider_group(group, f"{path}.provider_groups[{index}]", group_id)

    def _provider_group(self, value: Any, path: str, group_id: int) -> None:
        obj = _object(value, path)
        npis = _array(_get(obj, "npi", path), f"{path}.npi")
        tin = _object(_get(obj, "tin", path), f"{path}.tin")
        tin_type = _string(_get(tin, "type", f"{path}.tin"), f"{path}.tin.type")
        tin_value = _string(_get(tin, "value", f"{path}.tin"), f"{path}.tin.value")
        business_name = tin.get("business_name")
        name = (
            _string(business_name, f"{path}.tin.business_name")[:200] if business_name is not None else None
        )
        ein = None
        if tin_type == "ein":
            if not _EIN_RE.match(tin_value):
                raise TicFormatError(f"{path}.tin.value", f"{tin_value!r} is not an EIN (NN-NNNNNNN)")
            ein = tin_value.replace("-", "")
        numbers = [_npi_number(n, f"{path}.npi[{i}]") for i, n in enumerate(npis)]
        if numbers == [0]:
            # A TIN-only arrangement: with a TIN of type npi, that NPI is the provider.
            if tin_type != "npi":
                self.report.skipped["provider group without NPI (TIN only)"] += 1
                self.tin_only_groups.add(group_id)
                return
            numbers = [_npi_number(int(tin_value) if tin_value.isdigit() else tin_value, f"{path}.tin.value")]
        for number in numbers:
            npi = str(number)
            if not npi_is_valid(npi) and npi not in self._warned_npis:
                if len(self._warned_npis) < 100_000:  # bounded: a repeat beyond it warns again
                    self._warned_npis.add(npi)
                self.report.warn(f"NPI {npi} fails the check digit ({path}); imported anyway")
            self._seq += 1
            self.groups.add((self._seq, group_id, npi, ein, name))


def _group_id(value: Any, path: str) -> int:
    number = _number(value, path)
    if number != int(number):
        raise TicFormatError(path, f"expected an integer provider group id, found {number}")
    return int(number)


def _npi_number(value: Any, path: str) -> int:
    number = _number(value, path)
    if number != int(number) or not (number == 0 or 1_000_000_000 <= number <= 9_999_999_999):
        raise TicFormatError(path, f"{number} is not a ten-digit NPI (or 0 for none)")
    return int(number)


def _unpriceable(negotiated_type: str, billing_class: str, modifiers: Sequence[str]) -> str | None:
    if billing_class == "institutional":
        return "institutional billing_class"
    if negotiated_type == "per diem":
        return "per diem"
    if not all(m == "" or MODIFIER_RE.match(m) for m in modifiers):
        return "billing_code_modifier not a two-character modifier"
    return None


# --- the import: one transaction ----------------------------------------------------------------


def plan_key(metadata: dict[str, Any]) -> str:
    """Eight hex digits naming the plan (or, without plan fields, the reporting entity)."""
    identity = "|".join(str(metadata.get(k, "")) for k in ("reporting_entity_name", *_PLAN_FIELDS))
    return hashlib.sha256(identity.encode()).hexdigest()[:8]


def fee_schedule_code(network_code: str, plan: str, group_id: int) -> str:
    code = f"TIC-{network_code}-{plan}-{group_id}"
    if len(code) <= 64:
        return code
    return f"TIC-{hashlib.sha256(code.encode()).hexdigest()[:20]}-{group_id}"


class TicImport:
    """Import a TiC file into a network: open(), feed()*, finish() -> TicReport; or abort().

    Sync and blocking: the HTTP route calls it from worker threads, one call at a time.
    """

    def __init__(self, engine: Engine, network_code: str, effective_from: date | None = None) -> None:
        self.engine = engine
        self.network_code = network_code
        self.effective_from = effective_from
        self.report = TicReport(network_code=network_code)
        self._conn: Connection | None = None
        self._reader: TicReader | None = None
        self._network_id = 0

    @property
    def bytes_read(self) -> int:
        return self._reader.bytes_read if self._reader else 0

    def open(self) -> None:
        conn = begin_ingest(self.engine)
        self._conn = conn
        query = select(NetworkRow.id).where(NetworkRow.code == self.network_code)
        if conn.dialect.name == "postgresql":
            query = query.with_for_update()  # imports into one network take turns
        network_id = conn.execute(query).scalar_one_or_none()
        if network_id is None:
            self.abort()
            raise UnknownNetwork(self.network_code)
        self._network_id = network_id
        self._reader = TicReader(conn, self.report)

    def feed(self, chunk: bytes) -> None:
        assert self._reader is not None
        self._reader.feed(chunk)

    def finish(self) -> TicReport:
        assert self._reader is not None and self._conn is not None
        self._reader.close()
        metadata = self._reader.metadata.values
        effective_from = self.effective_from or date.fromisoformat(metadata["last_updated_on"])
        conn = self._conn
        self._warn_unknown_groups(conn)
        schedules = self._fee_schedules(conn, metadata)
        self._replace_rates(conn)
        _upsert_providers(conn, self.report)
        self._contracts(conn, schedules, effective_from)
        if conn.dialect.name == "sqlite":
            for table in (
                "staged_tic_groups",
                "staged_tic_refs",
                "staged_tic_prices",
                "staged_tic_schedules",
            ):
                conn.exec_driver_sql(f"DROP TABLE {table}")
        self._conn = None
        end_ingest(conn, commit=True)
        INGEST_ROWS.labels(source="tic").inc(self.report.rates)
        return self.report

    def abort(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            end_ingest(conn, commit=False)

    def _warn_unknown_groups(self, conn: Connection) -> None:
        missing = conn.exec_driver_sql(
            "SELECT group_id, count(*) FROM staged_tic_refs r WHERE NOT EXISTS "
            "(SELECT 1 FROM staged_tic_groups g WHERE g.group_id = r.group_id) GROUP BY group_id"
        ).all()
        assert self._reader is not None
        for group_id, references in missing:
            if group_id in self._reader.tin_only_groups:
                continue
            self.report.skipped["reference to an undefined provider group"] += int(references)
            self.report.warn(f"provider group {group_id} is referenced but not in provider_references")

    def _fee_schedules(
        self, conn: Connection, metadata: dict[str, Any]
    ) -> dict[int, tuple[int, date | None]]:
        """One fee schedule per priced provider group that has NPIs: group -> (schedule id, end)."""
        groups = conn.exec_driver_sql(
            "SELECT r.group_id, MAX(p.expiration) FROM staged_tic_refs r "
            "JOIN staged_tic_prices p ON p.set_id = r.set_id "
            "WHERE r.group_id IN (SELECT group_id FROM staged_tic_groups) "
            "GROUP BY r.group_id ORDER BY r.group_id"
        ).all()
        plan = plan_key(metadata)
        label = str(metadata.get("plan_name") or metadata["reporting_entity_name"])
        codes = {int(g): fee_schedule_code(self.network_code, plan, int(g)) for g, _ in groups}
        existing = _ids_by_code(conn, list(codes.values()))
        new = [
            {"code": code, "name": f"{label} - provider group {g}"[:200], "rates_version": 0, "rate_count": 0}
            for g, code in codes.items()
            if code not in existing
        ]
        if new:
            conn.execute(insert(FeeScheduleRow), new)
            existing = _ids_by_code(conn, list(codes.values()))
        table = StagingTable(
            conn,
            "staged_tic_schedules",
            (Column("group_id", "BIGINT", "INTEGER"), Column("fee_schedule_id", "INTEGER", "INTEGER")),
            ("group_id",),
        )
        table.write([(g, existing[code]) for g, code in codes.items()])
        self.report.fee_schedules = len(codes)
        ends = {int(g): None if end == OPEN_ENDED else date.fromisoformat(str(end)) for g, end in groups}
        return {g: (existing[code], ends[g]) for g, code in codes.items()}

    def _replace_rates(self, conn: Connection) -> None:
        conn.exec_driver_sql(
            "DELETE FROM fee_schedule_rates WHERE fee_schedule_id IN "
            "(SELECT fee_schedule_id FROM staged_tic_schedules)"
        )
        joined = (
            "FROM staged_tic_prices p JOIN staged_tic_refs r ON r.set_id = p.set_id "
            "JOIN staged_tic_schedules s ON s.group_id = r.group_id"
        )
        # The first price in the file wins when a group has several for one code and modifier.
        if conn.dialect.name == "postgresql":
            first = (
                "SELECT DISTINCT ON (s.fee_schedule_id, p.procedure_code, p.modifier) s.fee_schedule_id, "
                f"p.procedure_code, p.modifier, p.allowed_amount, p.percent_of_billed {joined} "
                "ORDER BY s.fee_schedule_id, p.procedure_code, p.modifier, p.seq"
            )
        else:  # SQLite takes the bare columns from the row holding MIN(seq)
            first = (
                "SELECT fee_schedule_id, procedure_code, modifier, allowed_amount, percent_of_billed FROM "
                "(SELECT s.fee_schedule_id, p.procedure_code, p.modifier, p.allowed_amount, "
                f"p.percent_of_billed, MIN(p.seq) {joined} "
                "GROUP BY s.fee_schedule_id, p.procedure_code, p.modifier)"
            )
        inserted = conn.exec_driver_sql(
            "INSERT INTO fee_schedule_rates "
            f"(fee_schedule_id, procedure_code, modifier, allowed_amount, percent_of_billed) {first}"
        ).rowcount
        candidates = conn.exec_driver_sql(f"SELECT count(*) {joined}").scalar_one()
        self.report.rates = int(inserted)
        duplicates = int(candidates) - int(inserted)
        if duplicates:
            self.report.skipped["later price for the same group, code and modifier"] += duplicates
        conn.exec_driver_sql(
            "UPDATE fee_schedules SET rates_version = rates_version + 1, rate_count = "
            "(SELECT count(*) FROM fee_schedule_rates r WHERE r.fee_schedule_id = fee_schedules.id) "
            "WHERE id IN (SELECT fee_schedule_id FROM staged_tic_schedules)"
        )

    def _contracts(
        self, conn: Connection, schedules: dict[int, tuple[int, date | None]], effective_from: date
    ) -> None:
        chosen = conn.exec_driver_sql(
            "SELECT p.id, p.npi, MIN(g.group_id), COUNT(DISTINCT g.group_id) FROM staged_tic_groups g "
            "JOIN staged_tic_schedules s ON s.group_id = g.group_id JOIN providers p ON p.npi = g.npi "
            "GROUP BY p.id, p.npi ORDER BY p.id",
            execution_options=_STREAMED,
        )
        several = 0
        for batch in chosen.partitions(1000):
            several += sum(1 for *_, groups in batch if groups > 1)
            wanted = {
                provider_id: _Wanted(npi, *schedules[int(group)]) for provider_id, npi, group, _ in batch
            }
            _upsert_contracts(conn, self._network_id, wanted, effective_from, self.report)
        if several:
            self.report.warn(
                f"{several} provider(s) are in several priced provider groups; each is contracted "
                "with the fee schedule of its lowest provider_group_id"
            )


def _ids_by_code(conn: Connection, codes: list[str]) -> dict[str, int]:
    found: dict[str, int] = {}
    for start in range(0, len(codes), 500):
        rows = conn.execute(
            select(FeeScheduleRow.code, FeeScheduleRow.id).where(
                FeeScheduleRow.code.in_(codes[start : start + 500])
            )
        ).all()
        found.update({code: id_ for code, id_ in rows})
    return found


def _upsert_providers(conn: Connection, report: TicReport) -> None:
    """Create or update every NPI of the file from its first listing, a thousand at a time."""
    first = conn.exec_driver_sql(
        "SELECT g.npi, g.tin, g.name FROM staged_tic_groups g JOIN "
        "(SELECT npi, MIN(seq) AS seq FROM staged_tic_groups GROUP BY npi) f ON f.seq = g.seq ORDER BY g.npi",
        execution_options=_STREAMED,
    )
    for batch in first.partitions(1000):
        current = {
            row.npi: row
            for row in conn.execute(
                select(ProviderRow.id, ProviderRow.npi, ProviderRow.name, ProviderRow.tin).where(
                    ProviderRow.npi.in_([npi for npi, _, _ in batch])
                )
            )
        }
        new, changed = [], []
        for npi, tin, name in batch:
            row = current.get(npi)
            if row is None:
                new.append({"npi": npi, "name": name or f"NPI {npi}", "tin": tin})
                continue
            # Only what the file states replaces what is stored.
            update = {"id": row.id, "name": name or row.name, "tin": tin or row.tin}
            if (update["name"], update["tin"]) != (row.name, row.tin):
                changed.append(update)
        if new:
            conn.execute(insert(ProviderRow), new)
        if changed:
            conn.execute(text("UPDATE providers SET name = :name, tin = :tin WHERE id = :id"), changed)
        report.providers_created += len(new)
        report.providers_updated += len(changed)
        report.providers_unchanged += len(batch) - len(new) - len(changed)


# Rows fetched as they are read (a server-side cursor on PostgreSQL), not all at once.
_STREAMED = {"stream_results": True, "max_row_buffer": 1000}


class _Wanted(NamedTuple):
    """The contract an import wants for one provider."""

    npi: str
    fee_schedule_id: int
    effective_to: date | None


def _upsert_contracts(
    conn: Connection,
    network_id: int,
    wanted: dict[int, _Wanted],
    effective_from: date,
    report: TicReport,
) -> None:
    """Per provider: update the contract starting on effective_from, or end the one running then
    and create it; a contract that starts later is left alone (warning)."""
    existing: dict[int, list[Any]] = {}
    for row in conn.execute(
        select(ContractRow.id, ContractRow.provider_id, ContractRow.fee_schedule_id,
               ContractRow.effective_from, ContractRow.effective_to)
        .where(ContractRow.network_id == network_id, ContractRow.provider_id.in_(list(wanted)))
    ):  # fmt: skip
        existing.setdefault(row.provider_id, []).append(row)
    for provider_id, (npi, fee_schedule_id, effective_to) in wanted.items():
        if effective_to is not None and effective_to < effective_from:
            report.skipped["contract expired before effective_from"] += 1
            continue
        rows = existing.get(provider_id, [])
        same = next((r for r in rows if r.effective_from == effective_from), None)
        if same is not None:
            if (same.fee_schedule_id, same.effective_to) != (fee_schedule_id, effective_to):
                conn.execute(
                    update(ContractRow)
                    .where(ContractRow.id == same.id)
                    .values(fee_schedule_id=fee_schedule_id, effective_to=effective_to)
                )
                report.contracts_updated += 1
            continue
        overlapping = [
            r for r in rows if _overlaps(r.effective_from, r.effective_to, effective_from, effective_to)
        ]
        later = [r for r in overlapping if r.effective_from > effective_from]
        if later:
            report.skipped["contract overlapping a later one"] += 1
            report.warn(f"NPI {npi}: contract {later[0].id} starts later and overlaps; left unchanged")
            continue
        for row in overlapping:
            conn.execute(
                update(ContractRow)
                .where(ContractRow.id == row.id)
                .values(effective_to=effective_from - timedelta(days=1))
            )
            report.contracts_ended += 1
        conn.execute(
            insert(ContractRow).values(
                network_id=network_id,
                provider_id=provider_id,
                fee_schedule_id=fee_schedule_id,
                effective_from=effective_from,
                effective_to=effective_to,
            )
        )
        report.contracts_created += 1


def _overlaps(a_from: date, a_to: date | None, b_from: date, b_to: date | None) -> bool:
    return (a_to is None or a_to >= b_from) and (b_to is None or b_to >= a_from)


def import_tic_file(
    engine: Engine, network_code: str, chunks: Iterable[bytes], effective_from: date | None = None
) -> TicReport:
    """The CLI path: the same import, driven from an iterable of chunks."""
    tic = TicImport(engine, network_code, effective_from)
    tic.open()
    try:
        for chunk in chunks:
            tic.feed(chunk)
        return tic.finish()
    finally:
        tic.abort()
