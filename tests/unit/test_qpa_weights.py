"""The QPA median counts each contract once: a NetworkRates entry that stands for n contracts
weighs as n entries of one (context.py groups the network's contracts by schedule and period)."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given
from hypothesis import strategies as st

from service.domain.adjudicate import adjudicate
from service.domain.model import AdjudicationContext, Claim
from tests.golden.loader import CASES, inputs, load_json


def _qpa_case() -> tuple[Claim, AdjudicationContext]:
    """99283 at an emergency, out of network: 150.00, 200.00 and 180.00 in effect (median 180)."""
    path = CASES / "07_emergency_out_of_network_qpa.json"
    return inputs(load_json(path), path.stem)


def _allowed(claim: Claim, ctx: AdjudicationContext) -> list[str]:
    return [str(line.allowed_amount) for line in adjudicate(claim, ctx).lines]


def test_an_entry_for_three_contracts_moves_the_median() -> None:
    claim, ctx = _qpa_case()
    assert _allowed(claim, ctx) == ["180.00"]
    weighted = tuple(
        replace(e, contracts=3) if e.fee_schedule.code == "HOSP-2026" else e for e in ctx.network_rates
    )
    assert _allowed(claim, replace(ctx, network_rates=weighted)) == ["200.00"]  # 150, 180, 200 x 3


@given(st.lists(st.integers(min_value=1, max_value=4), min_size=5, max_size=5))
def test_an_entry_weighs_as_many_entries_of_one(weights: list[int]) -> None:
    claim, ctx = _qpa_case()
    entries = ctx.network_rates
    assert len(entries) == len(weights)
    weighted = tuple(replace(e, contracts=w) for e, w in zip(entries, weights, strict=True))
    repeated = tuple(e for e, w in zip(entries, weights, strict=True) for _ in range(w))
    assert _allowed(claim, replace(ctx, network_rates=weighted)) == _allowed(
        claim, replace(ctx, network_rates=repeated)
    )
