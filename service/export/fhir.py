"""The stored EOB as a FHIR R4 ExplanationOfBenefit (CARIN Blue Button, professional/non-clinician).

Amounts come from the stored EOB only, so this view always agrees with it. Categories map as:
billed -> submitted, allowed -> eligible, CO-45 -> discount, PR-1 -> deductible, PR-3 -> copay,
PR-2 -> coinsurance, plan paid -> benefit and paidtoprovider, patient responsibility ->
memberliability; every other adjustment (a denial, or PR-45 balance billing) is noncovered and is
explained by a denialreason (denied line) or adjustmentreason (balance billing) entry carrying its
CARC and, in an extension, its X12 group code.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from ..domain.money import ZERO
from .records import CARC_DESCRIPTIONS, REMARK_DESCRIPTIONS, Payer, StoredClaim, money

PROFILE = (
    "http://hl7.org/fhir/us/carin-bb/StructureDefinition/"
    "C4BB-ExplanationOfBenefit-Professional-NonClinician|2.1.0"
)
HL7_ADJUDICATION = "http://terminology.hl7.org/CodeSystem/adjudication"
C4BB_ADJUDICATION = "http://hl7.org/fhir/us/carin-bb/CodeSystem/C4BBAdjudication"
C4BB_DISCRIMINATOR = "http://hl7.org/fhir/us/carin-bb/CodeSystem/C4BBAdjudicationDiscriminator"
C4BB_STATUS = "http://hl7.org/fhir/us/carin-bb/CodeSystem/C4BBPayerAdjudicationStatus"
C4BB_IDENTIFIER_TYPE = "http://hl7.org/fhir/us/carin-bb/CodeSystem/C4BBIdentifierType"
C4BB_SUPPORTING_INFO = "http://hl7.org/fhir/us/carin-bb/CodeSystem/C4BBSupportingInfoType"
C4BB_DIAGNOSIS_TYPE = "http://hl7.org/fhir/us/carin-bb/CodeSystem/C4BBClaimDiagnosisType"
CARC = "https://x12.org/codes/claim-adjustment-reason-codes"
GROUP_CODES = "https://x12.org/codes/claim-adjustment-group-codes"
CPT = "http://www.ama-assn.org/go/cpt"
HCPCS = "https://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets"
PLACE_OF_SERVICE = "https://www.cms.gov/Medicare/Coding/place-of-service-codes/Place_of_Service_Code_Set"
ICD10_CM = "http://hl7.org/fhir/sid/icd-10-cm"
NPI = "http://hl7.org/fhir/sid/us-npi"
V2_IDENTIFIER_TYPE = "http://terminology.hl7.org/CodeSystem/v2-0203"
FHIR_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")

# (code system, code, display, EOB money field) in the order they appear on a line and in totals.
AMOUNT_CATEGORIES = (
    (HL7_ADJUDICATION, "submitted", "Submitted Amount", "billed_amount"),
    (HL7_ADJUDICATION, "eligible", "Eligible Amount", "allowed_amount"),
    (C4BB_ADJUDICATION, "discount", "Discount", "network_discount_amount"),
    (HL7_ADJUDICATION, "deductible", "Deductible", "deductible_amount"),
    (HL7_ADJUDICATION, "copay", "CoPay", "copay_amount"),
    (C4BB_ADJUDICATION, "coinsurance", "Co-insurance", "coinsurance_amount"),
    (C4BB_ADJUDICATION, "noncovered", "Noncovered", None),  # computed from the adjustments
    (HL7_ADJUDICATION, "benefit", "Benefit Amount", "plan_paid_amount"),
    (C4BB_ADJUDICATION, "paidtoprovider", "Paid to provider", "plan_paid_amount"),
    (C4BB_ADJUDICATION, "memberliability", "Member liability", "patient_responsibility_amount"),
)
# Adjustments that an amount category above already carries; every other one is noncovered.
CATEGORISED_ADJUSTMENTS = frozenset({("CO", "45"), ("PR", "1"), ("PR", "2"), ("PR", "3")})
PAYMENT_STATUS = {"paid": "paid", "partially_paid": "partiallypaid", "denied": "denied"}


def explanation_of_benefit(claim: StoredClaim, payer: Payer) -> dict[str, Any]:
    """The ExplanationOfBenefit resource as a JSON-ready dict (money as Decimal)."""
    eob, request = claim.eob, claim.request
    notes = _note_numbers(eob["lines"])
    dates = sorted(line["service_date"] for line in eob["lines"])
    resource: dict[str, Any] = {
        "resourceType": "ExplanationOfBenefit",
        "id": _fhir_id(eob["claim_id"]),
        "meta": {"lastUpdated": _instant(_last_updated(claim)), "profile": [PROFILE]},
        "identifier": [
            {
                "type": _concept(C4BB_IDENTIFIER_TYPE, "uc", "Unique Claim ID"),
                "system": f"{payer.fhir_base}/claim-id",
                "value": eob["claim_id"],
            }
        ],
        "status": "cancelled" if claim.status == "voided" else "active",
        "type": _concept("http://terminology.hl7.org/CodeSystem/claim-type", "professional", "Professional"),
        "use": "claim",
        "patient": _member_reference(eob["member_id"], payer),
        "billablePeriod": {"start": dates[0], "end": dates[-1]},
        "created": _instant(claim.adjudicated_at or claim.created_at),
        "insurer": {
            "identifier": {
                "type": _concept(C4BB_IDENTIFIER_TYPE, "payerid", "Payer ID"),
                "value": payer.payer_id,
            },
            "display": payer.name,
        },
        "provider": _npi_reference(eob["billing_provider_npi"]),
        "payee": {
            "type": _concept("http://terminology.hl7.org/CodeSystem/payeetype", "provider", "Provider"),
            "party": _npi_reference(eob["billing_provider_npi"]),
        },
        "outcome": "queued" if claim.status == "pended" else "complete",
        "supportingInfo": _supporting_info(claim),
        "insurance": [{"focal": True, "coverage": _coverage_reference(eob, payer)}],
        "item": [_item(line, request, notes, payer) for line in eob["lines"]],
        "adjudication": [_network_status("billingnetworkstatus", eob["network_status"], False)],
        "total": _totals(eob),
    }
    diagnoses = [_diagnosis(i, code) for i, code in enumerate(request.get("diagnosis_codes") or [])]
    if diagnoses:
        resource["diagnosis"] = diagnoses
    if claim.status in PAYMENT_STATUS:
        resource["payment"] = {
            "type": _concept(C4BB_STATUS, PAYMENT_STATUS[claim.status]),
            "amount": _usd(money(eob["totals"]["plan_paid_amount"])),
        }
    if notes:
        resource["processNote"] = [
            {"number": number, "type": "display", "text": _remark_text(code)}
            for code, number in notes.items()
        ]
    if eob.get("accumulators"):
        resource["benefitBalance"] = _benefit_balance(eob["accumulators"])
    return resource


def to_json(resource: Mapping[str, Any]) -> str:
    """JSON text with Decimal money written as exact JSON numbers (never through float)."""
    return "".join(_encode(resource))


def _encode(value: Any) -> Iterator[str]:
    if isinstance(value, Mapping):
        yield "{"
        for i, (key, item) in enumerate(value.items()):
            yield ("," if i else "") + json.dumps(key) + ":"
            yield from _encode(item)
        yield "}"
    elif isinstance(value, list | tuple):
        yield "["
        for i, item in enumerate(value):
            if i:
                yield ","
            yield from _encode(item)
        yield "]"
    elif isinstance(value, Decimal):
        yield str(value)
    else:
        yield json.dumps(value)


# ------------------------------------------------------------------ header parts


def _fhir_id(claim_id: str) -> str:
    # FHIR ids allow fewer characters than our claim ids; the identifier keeps the exact one.
    if FHIR_ID.match(claim_id):
        return claim_id
    return "claim-" + hashlib.sha256(claim_id.encode()).hexdigest()[:40]


def _last_updated(claim: StoredClaim) -> datetime:
    stamps = [t for t in (claim.created_at, claim.adjudicated_at, claim.voided_at) if t is not None]
    return max(stamps)


def _instant(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")


def _concept(system: str, code: str, display: str | None = None) -> dict[str, Any]:
    coding: dict[str, Any] = {"system": system, "code": code}
    if display:
        coding["display"] = display
    return {"coding": [coding]}


def _usd(amount: Decimal) -> dict[str, Any]:
    return {"value": amount, "currency": "USD"}


def _member_reference(member_id: str, payer: Payer) -> dict[str, Any]:
    return {
        "identifier": {
            "type": _concept(V2_IDENTIFIER_TYPE, "MB", "Member Number"),
            "system": f"{payer.fhir_base}/member-id",
            "value": member_id,
        }
    }


def _npi_reference(npi: str) -> dict[str, Any]:
    return {
        "identifier": {
            "type": _concept(V2_IDENTIFIER_TYPE, "NPI", "National provider identifier"),
            "system": NPI,
            "value": npi,
        }
    }


def _coverage_reference(eob: Mapping[str, Any], payer: Payer) -> dict[str, Any]:
    reference: dict[str, Any] = {
        "identifier": {"system": f"{payer.fhir_base}/member-id", "value": eob["member_id"]}
    }
    if eob.get("plan_code"):
        reference["display"] = eob["plan_code"]
    return reference


def _supporting_info(claim: StoredClaim) -> list[dict[str, Any]]:
    info: list[dict[str, Any]] = [
        {
            "sequence": 1,
            "category": _concept(C4BB_SUPPORTING_INFO, "clmrecvddate", "Claim Received Date"),
            "timingDate": claim.received_date.isoformat(),
        }
    ]
    facility = claim.request.get("facility_npi")
    if facility:
        info.append(
            {
                "sequence": 2,
                "category": _concept(C4BB_SUPPORTING_INFO, "servicefacility", "Service Facility"),
                "valueReference": _npi_reference(facility),
            }
        )
    return info


def _diagnosis(index: int, code: str) -> dict[str, Any]:
    kind = (
        _concept("http://terminology.hl7.org/CodeSystem/ex-diagnosistype", "principal", "Principal")
        if index == 0
        else _concept(C4BB_DIAGNOSIS_TYPE, "secondary", "Secondary")
    )
    return {
        "sequence": index + 1,
        "diagnosisCodeableConcept": _concept(ICD10_CM, code),
        "type": [kind],
    }


def _benefit_balance(accumulators: Mapping[str, Any]) -> list[dict[str, Any]]:
    balances = []
    for tier, network in (("in_network", "in"), ("out_of_network", "out")):
        acc = accumulators.get(tier)
        if not acc:
            continue
        balances.append(
            {
                "category": _concept(
                    "http://terminology.hl7.org/CodeSystem/ex-benefitcategory", "1", "Medical Care"
                ),
                "network": _concept("http://terminology.hl7.org/CodeSystem/benefit-network", network),
                "unit": _concept("http://terminology.hl7.org/CodeSystem/benefit-unit", "individual"),
                "term": _concept("http://terminology.hl7.org/CodeSystem/benefit-term", "annual"),
                "financial": [
                    {
                        "type": _concept(
                            "http://terminology.hl7.org/CodeSystem/benefit-type", "deductible", "Deductible"
                        ),
                        "allowedMoney": _usd(money(acc["deductible"])),
                        "usedMoney": _usd(money(acc["deductible_met"])),
                    },
                    {
                        "type": _concept(
                            "http://terminology.hl7.org/CodeSystem/coverage-copay-type",
                            "maxoutofpocket",
                            "Maximum out of pocket",
                        ),
                        "allowedMoney": _usd(money(acc["out_of_pocket_max"])),
                        "usedMoney": _usd(money(acc["out_of_pocket_met"])),
                    },
                ],
            }
        )
    return balances


# ------------------------------------------------------------------ lines and totals


def _item(
    line: Mapping[str, Any], request: Mapping[str, Any], notes: Mapping[str, int], payer: Payer
) -> dict[str, Any]:
    item: dict[str, Any] = {
        "sequence": line["line_number"],
        "productOrService": _procedure(line["procedure_code"]),
        "servicedDate": line["service_date"],
        "locationCodeableConcept": _concept(PLACE_OF_SERVICE, request["place_of_service"]),
        "quantity": {"value": line["units"]},
        "adjudication": _line_adjudication(line, payer),
    }
    if line["modifiers"]:
        item["modifier"] = [_modifier(m) for m in line["modifiers"]]
    if line["remark_codes"]:
        item["noteNumber"] = [notes[code] for code in line["remark_codes"]]
    return item


def _procedure(code: str) -> dict[str, Any]:
    # HCPCS Level II codes start with a letter; everything else is CPT (including 0001F-style codes).
    return _concept(HCPCS if code[0].isalpha() else CPT, code)


def _modifier(modifier: str) -> dict[str, Any]:
    # Numeric modifiers (25, 59) are CPT's; alphanumeric ones (LT, GA, XS) are HCPCS Level II.
    return _concept(CPT if modifier.isdigit() else HCPCS, modifier)


def _line_adjudication(line: Mapping[str, Any], payer: Payer) -> list[dict[str, Any]]:
    network = line["network_status"]
    status = _network_status(
        "benefitpaymentstatus", "in_network" if line["protected"] else network, line["protected"]
    )
    if line["status"] == "pended":  # not adjudicated yet: only what was submitted
        return [
            _amount(HL7_ADJUDICATION, "submitted", "Submitted Amount", money(line["billed_amount"])),
            status,
        ]
    entries = [
        _amount(system, code, display, _line_amount(line, field))
        for system, code, display, field in AMOUNT_CATEGORIES
    ]
    entries.append(status)
    if line["status"] == "paid":
        entries.append({"category": _concept(C4BB_DISCRIMINATOR, "allowedunits"), "value": line["units"]})
    kind = "denialreason" if line["status"] == "denied" else "adjustmentreason"
    entries += [_reason(kind, adj, payer) for adj in _uncategorised(line["adjustments"])]
    return entries


def _line_amount(line: Mapping[str, Any], field: str | None) -> Decimal:
    if field is None:
        return sum((money(a["amount"]) for a in _uncategorised(line["adjustments"])), ZERO)
    return money(line[field])


def _uncategorised(adjustments: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return [a for a in adjustments if (a["group"], a["reason_code"]) not in CATEGORISED_ADJUSTMENTS]


def _amount(system: str, code: str, display: str, amount: Decimal) -> dict[str, Any]:
    return {"category": _concept(system, code, display), "amount": _usd(amount)}


def _reason(kind: str, adjustment: Mapping[str, Any], payer: Payer) -> dict[str, Any]:
    code = adjustment["reason_code"]
    return {
        "extension": [
            {
                "url": f"{payer.fhir_base}/StructureDefinition/claim-adjustment-group",
                "valueCoding": {"system": GROUP_CODES, "code": adjustment["group"]},
            }
        ],
        "category": _concept(C4BB_DISCRIMINATOR, kind),
        "reason": _concept(CARC, code, CARC_DESCRIPTIONS.get(code)),
        "amount": _usd(money(adjustment["amount"])),
    }


def _network_status(kind: str, network: str | None, protected: bool) -> dict[str, Any]:
    code = {"in_network": "innetwork", "out_of_network": "outofnetwork"}.get(network or "", "other")
    reason = _concept(C4BB_STATUS, code)
    if protected:
        reason["text"] = "Out-of-network provider paid at the in-network level (No Surprises Act)"
    return {"category": _concept(C4BB_DISCRIMINATOR, kind), "reason": reason}


def _totals(eob: Mapping[str, Any]) -> list[dict[str, Any]]:
    totals = eob["totals"]
    if all(line["status"] == "pended" for line in eob["lines"]):
        return [_amount(HL7_ADJUDICATION, "submitted", "Submitted Amount", money(totals["billed_amount"]))]
    noncovered = sum((_line_amount(line, None) for line in eob["lines"]), ZERO)
    return [
        _amount(system, code, display, money(totals[field]) if field else noncovered)
        for system, code, display, field in AMOUNT_CATEGORIES
    ]


def _note_numbers(lines: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    numbers: dict[str, int] = {}
    for line in lines:
        for code in line["remark_codes"]:
            numbers.setdefault(code, len(numbers) + 1)
    return numbers


def _remark_text(code: str) -> str:
    description = REMARK_DESCRIPTIONS.get(code)
    return f"{code}: {description}" if description else code
