"""Stored EOBs as an X12 005010X221A1 835 (health care claim payment/advice).

One interchange, one functional group, one transaction set per payee. Every amount comes from the
stored EOB, so the remittance balances exactly as the EOB does:
- per line: SVC02 (billed) - SVC03 (paid) = the line's CAS amounts (adjudication invariant 1);
- per claim: CLP03 - CLP04 = all its CAS amounts, CLP05 = its PR amounts (invariant 2);
- per transaction: BPR02 = the sum of CLP04 minus the PLB adjustments.
A voided claim is reported as a reversal (CLP02 = 22) with every amount negated; when reversals
make the total negative, a PLB forwarding balance (FB) carries it to a later remittance.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from ..domain.money import ZERO
from ..domain.records import record
from .records import Payer, StoredClaim, money

ELEMENT, COMPONENT, REPETITION, TERMINATOR = "*", ">", "^", "~"
_SEPARATORS = re.compile(r"[*>^~\r\n]")
CLP01_MAX = 38  # the claim submitter's identifier is at most 38 characters in an 835
CAS_PAIRS_PER_SEGMENT = 6


class EventKind(StrEnum):
    ORIGINAL = "original"  # the claim as adjudicated
    REVERSAL = "reversal"  # the claim's void: the original with every amount negated


@record
class ClaimEvent:
    claim: StoredClaim
    kind: EventKind


@record
class Payee:
    npi: str
    name: str


@record
class Interchange:
    control_number: int  # ISA13 and GS06: 1..999999999, unique per interchange sent
    created_at: datetime
    sender_id: str
    receiver_id: str
    usage: str  # ISA15: "P" production, "T" test


def remittance_events(
    claims: Iterable[StoredClaim], start: date | None = None, end: date | None = None
) -> list[ClaimEvent]:
    """The 835 claim entries for these claims, optionally only those dated within [start, end].

    An adjudicated claim yields its original payment, dated when adjudicated; a voided one also
    yields a reversal, dated when voided. A claim that never left `pended` yields nothing.
    Entries come in date order, so a remittance reads as a ledger.
    """

    def in_range(moment: datetime) -> bool:
        day = moment.date()
        return (start is None or start <= day) and (end is None or day <= end)

    dated: list[tuple[datetime, str, ClaimEvent]] = []
    for claim in claims:
        if not claim.was_adjudicated:
            continue
        if claim.adjudicated_at and in_range(claim.adjudicated_at):
            dated.append(
                (claim.adjudicated_at, claim.payer_claim_number, ClaimEvent(claim, EventKind.ORIGINAL))
            )
        if claim.voided_at and claim.status == "voided" and in_range(claim.voided_at):
            dated.append((claim.voided_at, claim.payer_claim_number, ClaimEvent(claim, EventKind.REVERSAL)))
    dated.sort(key=lambda entry: entry[:2])
    return [event for _, _, event in dated]


def remittance_advice(
    events: Sequence[ClaimEvent], payer: Payer, payee: Payee, interchange: Interchange
) -> str:
    """The 835 as text, one segment per line."""
    transaction = _transaction(events, payer, payee, interchange)
    segments = [
        *_interchange_header(interchange),
        *transaction,
        _segment("GE", "1", interchange.control_number),
        _segment("IEA", "1", f"{interchange.control_number:09d}"),
    ]
    return "".join(segment + TERMINATOR + "\n" for segment in segments)


# ------------------------------------------------------------------ envelope and header


def _interchange_header(ic: Interchange) -> list[str]:
    return [
        _segment(
            "ISA",
            "00",
            " " * 10,
            "00",
            " " * 10,
            "ZZ",
            _text(ic.sender_id)[:15].ljust(15),
            "ZZ",
            _text(ic.receiver_id)[:15].ljust(15),
            ic.created_at.strftime("%y%m%d"),
            ic.created_at.strftime("%H%M"),
            REPETITION,
            "00501",
            f"{ic.control_number:09d}",
            "0",
            ic.usage,
            COMPONENT,
        ),
        _segment(
            "GS",
            "HP",
            _text(ic.sender_id)[:15],
            _text(ic.receiver_id)[:15],
            ic.created_at.strftime("%Y%m%d"),
            ic.created_at.strftime("%H%M"),
            ic.control_number,
            "X",
            "005010X221A1",
        ),
    ]


def _transaction(events: Sequence[ClaimEvent], payer: Payer, payee: Payee, ic: Interchange) -> list[str]:
    paid = sum((_sign(e) * money(e.claim.eob["totals"]["plan_paid_amount"]) for e in events), ZERO)
    # A negative total (reversals outweigh payments) is forwarded: the payment itself is never < 0.
    forwarded = min(paid, ZERO)
    payment = paid - forwarded
    body = [
        _payment_order(payment, ic.created_at.date()),
        _segment("TRN", "1", ic.control_number, "1" + payer.tin),
        _segment("DTM", "405", _date(ic.created_at.date())),
        _segment("N1", "PR", _text(payer.name)[:60]),
        _segment("N3", _text(payer.address_line)[:55]),
        _segment("N4", _text(payer.city)[:30], payer.state, payer.postal_code),
        _segment("REF", "2U", _text(payer.payer_id)),
        _segment("PER", "BL", "", "TE", payer.contact_phone),
        _segment("N1", "PE", _text(payee.name)[:60], "XX", payee.npi),
    ]
    if events:
        body.append(_segment("LX", "1"))
        for event in events:
            body += _claim_payment(event)
    if forwarded:
        fiscal_year_end = date(ic.created_at.year, 12, 31)
        body.append(
            _segment(
                "PLB",
                payee.npi,
                _date(fiscal_year_end),
                f"FB{COMPONENT}{ic.control_number}",
                _amount(forwarded),
            )
        )
    st = _segment("ST", "835", "0001")
    return [st, *body, _segment("SE", len(body) + 2, "0001")]


def _payment_order(payment: Decimal, on: date) -> str:
    # Payments are made outside this service: the 835 is remittance information only ("I", by
    # check) or, when nothing is paid, a notification ("H", non-payment data).
    handling, method = ("I", "CHK") if payment > 0 else ("H", "NON")
    return _segment("BPR", handling, _amount(payment), "C", method, *[""] * 11, _date(on))


# ------------------------------------------------------------------ claims and lines


def _claim_payment(event: ClaimEvent) -> list[str]:
    claim, sign = event.claim, _sign(event)
    eob, totals = claim.eob, claim.eob["totals"]
    status = "22" if event.kind is EventKind.REVERSAL else _claim_status(claim.adjudicated_status)
    segments = [
        _segment(
            "CLP",
            _text(eob["claim_id"])[:CLP01_MAX],
            status,
            _amount(sign * money(totals["billed_amount"])),
            _amount(sign * money(totals["plan_paid_amount"])),
            _amount(sign * money(totals["patient_responsibility_amount"])),
            _filing_indicator(eob),
            _text(claim.payer_claim_number),
            claim.request["place_of_service"],
        ),
        _segment("NM1", "QC", "1", "", "", "", "", "", "MI", _text(eob["member_id"])),
        _segment("DTM", "050", _date(claim.received_date)),
    ]
    for line in eob["lines"]:
        segments += _service_payment(line, sign)
    return segments


def _claim_status(status: str) -> str:
    # 1: processed as primary (paid in full or in part); 4: denied.
    return "4" if status == "denied" else "1"


def _filing_indicator(eob: Mapping[str, Any]) -> str:
    accumulators = eob.get("accumulators")
    if accumulators is None:  # unknown member: no plan to name
        return "ZZ"
    # A plan without out-of-network benefits is an HMO; otherwise we report it as a PPO.
    return "HM" if accumulators.get("out_of_network") is None else "12"


def _service_payment(line: Mapping[str, Any], sign: int) -> list[str]:
    procedure = COMPONENT.join(["HC", line["procedure_code"], *line["modifiers"]])
    segments = [
        _segment(
            "SVC",
            procedure,
            _amount(sign * money(line["billed_amount"])),
            _amount(sign * money(line["plan_paid_amount"])),
            "",
            line["units"],
        ),
        _segment("DTM", "472", _date(date.fromisoformat(line["service_date"]))),
    ]
    segments += _adjustments(line["adjustments"], sign)
    segments.append(_segment("REF", "6R", line["line_number"]))
    segments.append(_segment("AMT", "B6", _amount(sign * money(line["allowed_amount"]))))
    segments += [_segment("LQ", "HE", code) for code in line["remark_codes"]]
    return segments


def _adjustments(adjustments: Sequence[Mapping[str, Any]], sign: int) -> list[str]:
    by_group: dict[str, list[Mapping[str, Any]]] = {}
    for adjustment in adjustments:
        by_group.setdefault(adjustment["group"], []).append(adjustment)
    segments = []
    for group, items in by_group.items():
        for start in range(0, len(items), CAS_PAIRS_PER_SEGMENT):
            elements: list[object] = [group]
            for adj in items[start : start + CAS_PAIRS_PER_SEGMENT]:
                elements += [adj["reason_code"], _amount(sign * money(adj["amount"])), ""]
            segments.append(_segment("CAS", *elements))
    return segments


# ------------------------------------------------------------------ formatting


def _sign(event: ClaimEvent) -> int:
    return -1 if event.kind is EventKind.REVERSAL else 1


def _segment(name: str, *elements: object) -> str:
    text = ELEMENT.join([name, *(str(e) for e in elements)])
    return text.rstrip(ELEMENT)  # trailing empty elements are omitted


def _amount(value: Decimal) -> str:
    """X12 decimal: no exponent, trailing fractional zeros suppressed ("85", "25.5", "-85")."""
    text = format(value.normalize(), "f")
    return "0" if text in ("-0", "0") else text


def _date(day: date) -> str:
    return day.strftime("%Y%m%d")


def _text(value: str) -> str:
    """Free text with the delimiters removed, so no value can break the segment structure."""
    return _SEPARATORS.sub(" ", value).strip()
