"""Money helpers. All money is Decimal; the two rounding points of adjudication.md live here."""

from __future__ import annotations

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
