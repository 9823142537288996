"""Procedure-code shapes and ranges, NPI check digit. Pure functions."""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache

from .records import record

# CPT (five digits, or four digits and a category letter F/T/U/M) and HCPCS Level II (letter + 4 digits).
PROCEDURE_CODE_RE = re.compile(r"^(?:[0-9]{4}[0-9FTUM]|[A-Z][0-9]{4})$")
MODIFIER_RE = re.compile(r"^[0-9A-Z]{2}$")


def is_procedure_code(code: str) -> bool:
    return bool(PROCEDURE_CODE_RE.match(code))


def is_modifier(modifier: str) -> bool:
    return bool(MODIFIER_RE.match(modifier))


@lru_cache(maxsize=16_384)  # a hot path: every code is tested against every range of a plan
def _shape(code: str) -> str:
    # Digits are interchangeable, and so is a HCPCS leading letter (A0021-V5364 is one range);
    # a CPT category letter at the end is not: 0005T (Category III) is not in 0001F-0009F.
    return "".join("9" if c.isdigit() else "A" if i == 0 else c for i, c in enumerate(code))


@record
class CodeRange:
    """An inclusive range of same-shaped procedure codes; a single code is a range of one."""

    low: str
    high: str

    def contains(self, code: str) -> bool:
        # The bounds first: two string comparisons rule out most ranges before any shape lookup.
        return self.low <= code <= self.high and _shape(code) == _shape(self.low)

    def __str__(self) -> str:
        return self.low if self.low == self.high else f"{self.low}-{self.high}"


def parse_code_range(text: str) -> CodeRange:
    """Parse "99213" or "99202-99215". Raises ValueError with a readable message."""
    parts = text.split("-")
    if len(parts) == 1:
        low = high = parts[0]
    elif len(parts) == 2:
        low, high = parts
    else:
        raise ValueError(f"{text!r} is neither a code nor a LOW-HIGH range")
    for code in (low, high):
        if not is_procedure_code(code):
            raise ValueError(f"{code!r} is not a CPT or HCPCS procedure code")
    if _shape(low) != _shape(high):
        raise ValueError(f"range {text!r} mixes codes of different shapes")
    if low > high:
        raise ValueError(f"range {text!r} has its low end above its high end")
    return CodeRange(low, high)


@record
class CodeSet:
    ranges: tuple[CodeRange, ...] = ()

    @classmethod
    def parse(cls, texts: Iterable[str]) -> CodeSet:
        return cls(tuple(parse_code_range(t) for t in texts))

    def contains(self, code: str) -> bool:
        # A loop, not any() over a generator: every claim line is tested against its plan's
        # prior-authorization and copay lists, some 20 times a claim.
        for r in self.ranges:  # noqa: SIM110 (any() over a generator costs more here)
            if r.contains(code):
                return True
        return False

    def as_strings(self) -> list[str]:
        return [str(r) for r in self.ranges]


def npi_is_valid(npi: str) -> bool:
    """NPI check digit: Luhn over the prefix 80840 followed by the ten digits."""
    if len(npi) != 10 or not npi.isdigit():
        return False
    digits = [int(c) for c in "80840" + npi]
    total = 0
    for i, d in enumerate(reversed(digits)):
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0
