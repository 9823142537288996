"""Money helpers. All money is Decimal; the two rounding points of adjudication.md live here."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import ROUND_HALF_UP, Decimal

ZERO = Decimal("0.00")
CENT = Decimal("0.01")


def round_cents(amount: Decimal) -> Decimal:
    """Round to the cent, half up. Used only for allowed amounts and coinsurance."""
    return amount.quantize(CENT, rounding=ROUND_HALF_UP)


def cents(amount: Decimal) -> Decimal:
    """Express an amount that is already whole cents with exactly two places (no rounding)."""
    quantized = amount.quantize(CENT)
    if quantized != amount:
        raise ValueError(f"{amount} is not a whole number of cents")
    return quantized


def fmt(amount: Decimal) -> str:
    """Money as the API's two-place decimal string."""
    return str(amount.quantize(CENT))


def median(values: list[Decimal]) -> Decimal:
    """Median of the values, the mean of the middle two when even, rounded to the cent."""
    if not values:
        raise ValueError("median of no values")
    ordered = sorted(values)
    mid = len(ordered) // 2
    if len(ordered) % 2:
        return round_cents(ordered[mid])
    return round_cents((ordered[mid - 1] + ordered[mid]) / 2)


def weighted_median(values: Sequence[tuple[Decimal, int]]) -> Decimal:
    """median() of the values with each (value, n) counted n times (n >= 1), without the list of
    every copy: the QPA counts each contract's rate once, and a network's contracts share a few
    hundred schedules (several contracts per value)."""
    if not values:
        raise ValueError("median of no values")
    if any(n < 1 for _, n in values):
        raise ValueError("a value must count at least once")
    ordered = sorted(values)
    total = sum(n for _, n in ordered)
    low, high = (total - 1) // 2, total // 2  # the middle positions among all the copies (equal when odd)
    seen = 0
    middle: list[Decimal] = []
    for value, n in ordered:
        seen += n
        while len(middle) < 2 and (low, high)[len(middle)] < seen:
            middle.append(value)
        if len(middle) == 2:
            break
    return round_cents((middle[0] + middle[1]) / 2) if low != high else round_cents(middle[0])
