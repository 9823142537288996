"""X12 835: pyx12 reports no errors for every golden claim, the remittance balances, and its
amounts are the stored EOB's field by field."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from service.export.records import StoredClaim
from service.export.x12_835 import (
    ClaimEvent,
    EventKind,
    Interchange,
    Payee,
    remittance_advice,
    remittance_events,
)
from tests.export.support import (
    ADJUDICATED_AT,
    GOLDEN_FILES,
    PAYER,
    VOIDED_AT,
    assert_835_matches_eob,
    assert_balanced,
    claim_loops,
    golden_claim,
    pyx12_errors,
    segments,
    stored,
)

GOLDEN = {path.stem: path for path in GOLDEN_FILES}
INTERCHANGE = Interchange(
    control_number=4711,
    created_at=datetime(2026, 3, 21, 8, 15, tzinfo=UTC),
    sender_id="EXHP1",
    receiver_id="1234567893",
    usage="T",
)
PAYEE = Payee("1234567893", "Dr. Ada Example")


def _advice(events: list[ClaimEvent], payee: Payee = PAYEE) -> str:
    return remittance_advice(events, PAYER, payee, INTERCHANGE)


def _voided(claim: StoredClaim) -> StoredClaim:
    return stored(dict(claim.eob), dict(claim.request), voided=True, number=claim.payer_claim_number)


ADJUDICATED_GOLDEN = [p for p in GOLDEN_FILES if golden_claim(p).was_adjudicated]


def test_only_pended_golden_claims_have_no_remittance() -> None:
    for path in GOLDEN_FILES:
        claim = golden_claim(path)
        assert (remittance_events([claim]) == []) == (claim.status == "pended"), path.stem
    assert len(ADJUDICATED_GOLDEN) < len(GOLDEN_FILES), "a pended case is covered"


@pytest.mark.parametrize("path", ADJUDICATED_GOLDEN, ids=lambda p: p.stem)
def test_every_golden_claim_gives_a_valid_balanced_835_matching_the_eob(path: Path) -> None:
    claim = golden_claim(path)
    text = _advice(remittance_events([claim]))
    assert pyx12_errors(text) == []
    assert_balanced(text)
    (loop,) = claim_loops(text)
    assert_835_matches_eob(loop, dict(claim.eob))
    expected_status = "4" if claim.eob["status"] == "denied" else "1"
    assert loop["clp"][2] == expected_status


@pytest.mark.parametrize("path", ADJUDICATED_GOLDEN, ids=lambda p: p.stem)
def test_every_voided_golden_claim_is_its_payment_and_a_full_reversal(path: Path) -> None:
    claim = _voided(golden_claim(path))
    text = _advice(remittance_events([claim]))
    assert pyx12_errors(text) == []
    assert_balanced(text)
    original, reversal = claim_loops(text)
    assert reversal["clp"][2] == "22"
    assert_835_matches_eob(original, dict(claim.eob))
    assert_835_matches_eob(reversal, dict(claim.eob), sign=-1)
    bpr = next(seg for seg in segments(text) if seg[0] == "BPR")
    assert (bpr[1], bpr[2], bpr[4]) == ("H", "0", "NON")


def test_all_golden_claims_in_one_remittance() -> None:
    claims = [golden_claim(p) for p in ADJUDICATED_GOLDEN]
    text = _advice(remittance_events(claims))
    assert pyx12_errors(text) == []
    assert_balanced(text)
    paid = sum((Decimal(c.eob["totals"]["plan_paid_amount"]) for c in claims), Decimal(0))
    bpr = next(seg for seg in segments(text) if seg[0] == "BPR")
    assert Decimal(bpr[2]) == paid and bpr[1] == "I" and bpr[4] == "CHK"
    assert len(claim_loops(text)) == len(claims)


def test_worked_example_835_reads_as_the_implementation_guide_shows() -> None:
    text = _advice(remittance_events([golden_claim(GOLDEN["01_worked_example"])]))
    segs = {seg[0]: seg for seg in reversed(segments(text))}  # first occurrence of each
    assert segs["ISA"][12] == "00501" and segs["ISA"][13] == "000004711" and segs["ISA"][16] == ">"
    assert segs["GS"][1] == "HP" and segs["GS"][8] == "005010X221A1"
    assert segs["ST"][1:] == ["835", "0001"]
    assert segs["BPR"][1:5] == ["I", "85", "C", "CHK"]
    assert segs["TRN"][1:] == ["1", "4711", "1999999999"]
    assert segs["CLP"][1:9] == ["CLM-0001", "1", "200", "85", "25", "12", "01", "11"]
    assert segs["NM1"][1:3] == ["QC", "1"] and segs["NM1"][8:] == ["MI", "M-100"]
    assert segs["SVC"][1:6] == ["HC>99213", "200", "85", "", "1"]
    cas = [seg for seg in segments(text) if seg[0] == "CAS"]
    assert cas == [["CAS", "CO", "45", "90"], ["CAS", "PR", "3", "25"]]
    assert segs["AMT"][1:] == ["B6", "110"]
    se = segs["SE"]
    st_index = next(i for i, seg in enumerate(segments(text)) if seg[0] == "ST")
    se_index = next(i for i, seg in enumerate(segments(text)) if seg[0] == "SE")
    assert int(se[1]) == se_index - st_index + 1


def test_a_reversal_alone_forwards_the_negative_balance() -> None:
    claim = _voided(golden_claim(GOLDEN["01_worked_example"]))
    events = remittance_events([claim], start=VOIDED_AT.date(), end=VOIDED_AT.date())
    assert [e.kind for e in events] == [EventKind.REVERSAL]
    text = _advice(events)
    assert pyx12_errors(text) == []
    assert_balanced(text)
    plb = next(seg for seg in segments(text) if seg[0] == "PLB")
    assert plb[1] == PAYEE.npi and plb[3] == "FB>4711" and Decimal(plb[4]) == Decimal("-85")


def test_events_are_chosen_by_the_day_they_happened() -> None:
    claim = _voided(golden_claim(GOLDEN["01_worked_example"]))
    adjudicated, voided = ADJUDICATED_AT.date(), VOIDED_AT.date()
    assert [e.kind for e in remittance_events([claim], adjudicated, adjudicated)] == [EventKind.ORIGINAL]
    assert [e.kind for e in remittance_events([claim], adjudicated, voided)] == [
        EventKind.ORIGINAL,
        EventKind.REVERSAL,
    ]
    assert remittance_events([claim], date(2026, 3, 11), date(2026, 3, 19)) == []


def test_a_claim_voided_while_pended_remits_nothing() -> None:
    claim = _voided(golden_claim(GOLDEN["23_pended_missing_price"]))
    assert remittance_events([claim]) == []


def test_an_empty_remittance_is_a_valid_zero_notification() -> None:
    text = _advice([])
    assert pyx12_errors(text) == []
    assert not claim_loops(text)
    bpr = next(seg for seg in segments(text) if seg[0] == "BPR")
    assert bpr[1:5] == ["H", "0", "C", "NON"]


def test_free_text_cannot_break_the_segment_structure() -> None:
    text = _advice(
        remittance_events([golden_claim(GOLDEN["01_worked_example"])]), Payee(PAYEE.npi, "A*B~C>D^E")
    )
    assert pyx12_errors(text) == []
    n1 = [seg for seg in segments(text) if seg[0] == "N1"]
    assert n1[1][2] == "A B C D E"


def test_long_claim_ids_are_cut_to_the_835_limit() -> None:
    claim = golden_claim(GOLDEN["01_worked_example"])
    eob = {**claim.eob, "claim_id": "C" * 64}
    text = _advice(remittance_events([stored(eob, dict(claim.request))]))
    assert pyx12_errors(text) == []
    (loop,) = claim_loops(text)
    assert loop["clp"][1] == "C" * 38


def test_pyx12_does_report_errors() -> None:
    """The validator is not vacuous: a broken 835 (wrong segment count) is refused."""
    text = _advice(remittance_events([golden_claim(GOLDEN["01_worked_example"])]))
    broken = re.sub(r"SE\*\d+\*", "SE*5*", text)
    assert broken != text
    assert pyx12_errors(broken)
    assert pyx12_errors(text.replace("NM1*QC*1******MI", "NM1*QC*1*****MI"))


def test_every_character_our_identifiers_allow_stays_valid_x12() -> None:
    claim = golden_claim(GOLDEN["01_worked_example"])
    eob = {**claim.eob, "claim_id": "clm_2026:01.x-Y", "member_id": "m_a:1.b"}
    text = _advice(
        remittance_events([stored(eob, dict(claim.request))]), Payee(PAYEE.npi, "O'Brien & Sons, Inc.")
    )
    assert pyx12_errors(text) == []
    (loop,) = claim_loops(text)
    assert loop["clp"][1] == "clm_2026:01.x-Y"
