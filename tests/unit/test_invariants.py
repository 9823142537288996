"""check_invariants must flag each kind of broken EOB, or the property tests prove nothing."""

from __future__ import annotations

from dataclasses import fields, replace
from decimal import Decimal

import pytest

from service.domain.adjudicate import adjudicate
from service.domain.eob import (
    MONEY_FIELDS,
    AccumulatorPosting,
    Adjustment,
    ClaimStatus,
    Eob,
    EobLine,
    Group,
    LineStatus,
    Totals,
    check_invariants,
)
from service.domain.model import Tier
from tests.golden.loader import CASES, inputs, load_json


def eob_of(case: str) -> Eob:
    path = CASES / f"{case}.json"
    claim, ctx = inputs(load_json(path), path.stem)
    return adjudicate(claim, ctx)


def with_line(eob: Eob, **changes: object) -> Eob:
    """The EOB with its first line changed, totals recomputed so only the line is wrong."""
    lines = (replace(eob.lines[0], **changes), *eob.lines[1:])  # type: ignore[arg-type]
    return replace(eob, lines=lines, totals=Totals.of(lines))


@pytest.mark.parametrize(
    "case",
    [
        "01_worked_example",
        "05_out_of_network_balance_billing",
        "07_emergency_out_of_network_qpa",
        "17_coverage_before_and_after",
        "18_unknown_member",
        "23_pended_missing_price",
    ],
)
def test_correct_eobs_pass(case: str) -> None:
    assert check_invariants(eob_of(case)) == []


def test_plan_paid_that_does_not_balance() -> None:
    eob = with_line(eob_of("01_worked_example"), plan_paid_amount=Decimal("86.00"))
    problems = check_invariants(eob)
    assert any("1: billed != plan paid + adjustments" in p for p in problems)
    assert any("3: allowed != plan paid + cost share" in p for p in problems)


def test_patient_responsibility_not_the_pr_adjustments() -> None:
    eob = with_line(eob_of("01_worked_example"), patient_responsibility_amount=Decimal("20.00"))
    assert any("2: patient != sum of PR adjustments" in p for p in check_invariants(eob))


def test_balance_billing_in_network() -> None:
    eob = eob_of("01_worked_example")
    line = eob.lines[0]
    broken = with_line(
        eob,
        network_discount_amount=Decimal("0.00"),
        balance_billing_amount=Decimal("90.00"),
        patient_responsibility_amount=Decimal("115.00"),
        adjustments=(Adjustment(Group.PR, "45", Decimal("90.00")), *line.adjustments[1:]),
    )
    problems = check_invariants(broken)
    assert any("4: balance billing on an in-network or protected line" in p for p in problems)
    assert any("4: patient responsibility exceeds allowed" in p for p in problems)


def test_protected_line_is_held_to_in_network_rules() -> None:
    eob = eob_of("07_emergency_out_of_network_qpa")
    line = eob.lines[0]
    broken = with_line(
        eob,
        network_discount_amount=Decimal("0.00"),
        balance_billing_amount=line.network_discount_amount,
        patient_responsibility_amount=line.patient_responsibility_amount + line.network_discount_amount,
        adjustments=(Adjustment(Group.PR, "45", line.network_discount_amount), *line.adjustments[1:]),
    )
    assert check_invariants(broken)
    assert check_invariants(replace(broken, lines=(replace(broken.lines[0], protected=False),))) == []


def test_member_billed_for_a_provider_denial_in_network() -> None:
    eob = eob_of("09_in_network_without_authorization")
    billed = eob.lines[0].billed_amount
    broken = with_line(
        eob, adjustments=(Adjustment(Group.PR, "197", billed),), patient_responsibility_amount=billed
    )
    assert any("4: member owes a denial the provider controls" in p for p in check_invariants(broken))


def test_negative_and_out_of_order_amounts() -> None:
    eob = eob_of("01_worked_example")
    problems = check_invariants(with_line(eob, coinsurance_amount=Decimal("-1.00")))
    assert any("5: coinsurance_amount is negative" in p for p in problems)
    over = with_line(eob, allowed_amount=Decimal("250.00"))
    assert any("5: allowed exceeds billed" in p for p in check_invariants(over))
    paid_more = with_line(eob, plan_paid_amount=Decimal("115.00"))
    assert any("5: plan paid exceeds allowed" in p for p in check_invariants(paid_more))


def test_totals_status_and_snapshot() -> None:
    eob = eob_of("01_worked_example")
    assert "totals are not the sums of the lines" in check_invariants(replace(eob, totals=Totals()))
    assert any("status" in p for p in check_invariants(replace(eob, status=ClaimStatus.DENIED)))
    assert check_invariants(replace(eob, status=ClaimStatus.VOIDED)) == []
    assert eob.accumulators is not None
    over_max_in = replace(eob.accumulators.in_network, out_of_pocket_met=Decimal("3000.01"))
    over_max = replace(eob.accumulators, in_network=over_max_in)
    assert check_invariants(replace(eob, accumulators=over_max)) == [
        "6: in_network out-of-pocket met outside 0..maximum"
    ]


def test_pended_claim_shows_nothing_adjudicated() -> None:
    eob = eob_of("23_pended_missing_price")
    assert check_invariants(with_line(eob, allowed_amount=Decimal("1.00"))) == [
        "line 1: pended claim: allowed_amount is not 0"
    ]
    paid_line = with_line(eob, status=LineStatus.PAID)
    assert "line 1: pended claim: line is not pended" in check_invariants(paid_line)
    posting = AccumulatorPosting(2026, Tier.IN_NETWORK, Decimal("0.00"), Decimal("1.00"))
    assert check_invariants(replace(eob, postings=(posting,))) == ["pended claim: postings"]


def test_denied_line_shape() -> None:
    eob = eob_of("09_in_network_without_authorization")
    line: EobLine = eob.lines[0]
    split = (Adjustment(Group.CO, "197", Decimal("1000.00")), Adjustment(Group.CO, "197", Decimal("200.00")))
    assert line.billed_amount == Decimal("1200.00")
    assert any("denied line" in p for p in check_invariants(with_line(eob, adjustments=split)))


@pytest.mark.parametrize("case", ["01_worked_example", "23_pended_missing_price", "18_unknown_member"])
def test_a_voided_eob_is_held_to_the_rules_of_its_lines(case: str) -> None:
    voided = replace(eob_of(case), status=ClaimStatus.VOIDED)
    assert check_invariants(voided) == []
    broken = with_line(voided, plan_paid_amount=voided.lines[0].plan_paid_amount + Decimal("1.00"))
    assert check_invariants(broken) != []


def test_totals_fields_are_the_money_fields_in_order() -> None:
    # Totals.of fills the fields by position, in MONEY_FIELDS order.
    assert tuple(f.name for f in fields(Totals)) == MONEY_FIELDS
