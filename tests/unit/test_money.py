from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.domain.money import cents, fmt, median, round_cents, weighted_median


@pytest.mark.parametrize(
    ("amount", "rounded"),
    [
        ("3.025", "3.03"),  # half up, where half-even would give 3.02
        ("3.015", "3.02"),
        ("3.0249", "3.02"),
        ("0.005", "0.01"),
        ("0.004", "0.00"),
        ("2.675", "2.68"),  # the classic float trap: 2.675 is 2.67499... as a binary float
        ("10", "10.00"),
    ],
)
def test_round_cents_is_half_up(amount: str, rounded: str) -> None:
    result = round_cents(Decimal(amount))
    assert result == Decimal(rounded)
    assert str(result) == rounded


def test_cents_keeps_whole_cents_and_refuses_fractions() -> None:
    assert str(cents(Decimal("5"))) == "5.00"
    with pytest.raises(ValueError, match="not a whole number of cents"):
        cents(Decimal("5.001"))


def test_fmt_gives_two_places() -> None:
    assert fmt(Decimal("110")) == "110.00"
    assert fmt(Decimal("0")) == "0.00"


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (["150.00", "200.00", "180.00"], "180.00"),  # odd: the middle one, whatever the input order
        (["80.00", "90.00"], "85.00"),  # even: the mean of the middle two
        (["100.00", "100.01"], "100.01"),  # 100.005 rounded half up
        (["1.00", "9.00", "2.00", "3.00"], "2.50"),
        (["42.42"], "42.42"),
    ],
)
def test_median(values: list[str], expected: str) -> None:
    assert median([Decimal(v) for v in values]) == Decimal(expected)


def test_median_of_nothing_is_an_error() -> None:
    with pytest.raises(ValueError):
        median([])


@given(
    st.lists(
        st.tuples(
            st.decimals(min_value=0, max_value=100_000, places=2), st.integers(min_value=1, max_value=6)
        ),
        min_size=1,
        max_size=40,
    )
)
def test_weighted_median_is_the_median_of_every_copy(values: list[tuple[Decimal, int]]) -> None:
    expanded = [value for value, n in values for _ in range(n)]
    assert weighted_median(values) == median(expanded)


@pytest.mark.parametrize(
    "values", [[], [(Decimal("1.00"), 0)], [(Decimal("1.00"), 2), (Decimal("2.00"), -1)]]
)
def test_weighted_median_of_no_copies_is_an_error(values: list[tuple[Decimal, int]]) -> None:
    with pytest.raises(ValueError):
        weighted_median(values)
