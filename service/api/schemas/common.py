"""Pydantic field types shared by every request schema (api.md Conventions)."""

from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    StringConstraints,
)

from ...domain.codes import npi_is_valid, parse_code_range
from ...domain.money import fmt

_ISO_DATE_RE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")


def _npi(v: str) -> str:
    if not npi_is_valid(v):
        raise ValueError("NPI fails the check digit (Luhn with prefix 80840)")
    return v


def _code_range(v: str) -> str:
    parse_code_range(v)  # raises ValueError with a readable message
    return v


def _iso_date_text(v: object) -> object:
    # FastAPI validates parsed JSON in Python mode, where a strict date refuses every string; lax
    # dates also take timestamps and datetimes. Only the ISO calendar-date text (or a date) passes.
    if isinstance(v, date) and not isinstance(v, datetime):
        return v
    if isinstance(v, str) and _ISO_DATE_RE.fullmatch(v):
        return v
    raise ValueError("must be an ISO date YYYY-MM-DD")


def _positive(v: Decimal) -> Decimal:
    if v <= 0:
        raise ValueError("must be greater than 0")
    return v


# Money in requests: a string or a number, at most two decimal places, never NaN or infinite.
MoneyIn = Annotated[Decimal, Field(max_digits=12, decimal_places=2, ge=0, allow_inf_nan=False)]
PositiveMoneyIn = Annotated[MoneyIn, AfterValidator(_positive)]
# Money in responses: a two-place decimal string.
MoneyOut = Annotated[Decimal, PlainSerializer(fmt, return_type=str, when_used="json")]
# A share between 0 and 1 ("0.20" = 20%).
RateIn = Annotated[Decimal, Field(ge=0, le=1, max_digits=7, decimal_places=6, allow_inf_nan=False)]
# A multiplier of a reference schedule (1.50 = 150% of Medicare) or of billed.
PercentIn = Annotated[Decimal, Field(gt=0, le=100, max_digits=9, decimal_places=6, allow_inf_nan=False)]


def rate_str(d: Decimal) -> str:
    """A rate as a decimal string with at least two places: 0.2 -> "0.20", 0.125 -> "0.125"."""
    two = d.quantize(Decimal("0.01"))
    return str(two) if two == d else str(d.normalize())


RateOut = Annotated[Decimal, PlainSerializer(rate_str, return_type=str, when_used="json")]

Npi = Annotated[str, StringConstraints(pattern=r"^[0-9]{10}$"), AfterValidator(_npi)]
ProcedureCode = Annotated[str, StringConstraints(pattern=r"^(?:[0-9]{4}[0-9FTUM]|[A-Z][0-9]{4})$")]
Modifier = Annotated[str, StringConstraints(pattern=r"^[0-9A-Z]{2}$")]
CodeRangeText = Annotated[str, StringConstraints(max_length=11), AfterValidator(_code_range)]
Identifier = Annotated[
    str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]*$")
]
# Free text, but no control characters: PostgreSQL refuses NUL in text (a 500), and a name with a
# line break or escape sequence is junk in every report and file it reaches.
Name = Annotated[
    str,
    StringConstraints(min_length=1, max_length=200, strip_whitespace=True, pattern=r"^[^\x00-\x1f\x7f]*$"),
]
IsoDate = Annotated[date, BeforeValidator(_iso_date_text)]


class StrictModel(BaseModel):
    """Request bodies: unknown fields are errors, so a typo never silently drops a value."""

    model_config = ConfigDict(extra="forbid")
