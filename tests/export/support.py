"""Helpers for the export tests: stored claims from the golden cases, the FHIR and X12 validators,
and the field-by-field comparison of both exports with the stored EOB."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator, Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyx12.params
import pyx12.x12n_document
from fhir.resources.R4B.explanationofbenefit import ExplanationOfBenefit

from service.domain.adjudicate import adjudicate
from service.domain.eob import eob_to_dict
from service.domain.model import Claim
from service.export.records import Payer, StoredClaim
from tests.golden.loader import CASES, inputs, load_json

Json = dict[str, Any]

PAYER = Payer(
    name="Example Health Plan",
    payer_id="EXHP1",
    tin="999999999",
    address_line="100 Main Street",
    city="Springfield",
    state="IL",
    postal_code="62701",
    contact_phone="8005550100",
    fhir_base="https://claims.example/fhir",
)
ADJUDICATED_AT = datetime(2026, 3, 10, 14, 30, tzinfo=UTC)
VOIDED_AT = datetime(2026, 3, 20, 9, 0, tzinfo=UTC)
GOLDEN_FILES = sorted(CASES.glob("*.json"))


# ---------------------------------------------------------------- stored claims


def request_of(claim: Claim) -> Json:
    """The canonical request JSON the claims API stores for this claim."""
    return {
        "claim_id": claim.claim_id,
        "member_id": claim.member_id,
        "billing_provider_npi": claim.billing_provider_npi,
        "facility_npi": claim.facility_npi,
        "place_of_service": claim.place_of_service,
        "emergency": claim.emergency,
        "received_date": claim.received_date.isoformat(),
        "diagnosis_codes": list(claim.diagnosis_codes),
        "lines": [
            {
                "line_number": ln.line_number,
                "procedure_code": ln.procedure_code,
                "modifiers": list(ln.modifiers),
                "units": ln.units,
                "billed_amount": str(ln.billed_amount),
                "service_date": ln.service_date.isoformat(),
                "authorization_number": ln.authorization_number,
            }
            for ln in claim.lines
        ],
    }


def stored(eob: Json, request: Json, *, voided: bool = False, number: str = "1") -> StoredClaim:
    """A stored claim as the repository loads it; `voided` applies the claims API's void."""
    if voided:
        eob = {**eob, "status": "voided"}
    return StoredClaim(
        eob=eob,
        request=request,
        payer_claim_number=number,
        received_date=date.fromisoformat(request["received_date"]),
        created_at=ADJUDICATED_AT,
        adjudicated_at=ADJUDICATED_AT,
        voided_at=VOIDED_AT if voided else None,
    )


def golden_claim(path: Path) -> StoredClaim:
    """A golden case's claim as the claims API would have stored it after adjudication."""
    case = load_json(path)
    claim, context = inputs(case, path.stem)
    eob = eob_to_dict(adjudicate(claim, context, estimate=case.get("estimate", False)))
    # Through JSON, as stored: the exporters must cope with exactly what the database holds.
    return stored(json.loads(json.dumps(eob)), request_of(claim), number=path.stem[:2])


# ---------------------------------------------------------------- FHIR


def validated_fhir(text: str) -> tuple[ExplanationOfBenefit, Json]:
    """Validate with the R4B model plus the required bindings the model does not check."""
    resource: Json = json.loads(text, parse_float=Decimal)
    model = ExplanationOfBenefit.model_validate_json(text)
    assert resource["status"] in {"active", "cancelled", "draft", "entered-in-error"}
    assert resource["use"] in {"claim", "preauthorization", "predetermination"}
    assert resource["outcome"] in {"queued", "complete", "error", "partial"}
    for note in resource.get("processNote", []):
        assert note["type"] in {"display", "print", "printoper"}
    return model, resource


def coded(concept: Mapping[str, Any]) -> str:
    return str(concept["coding"][0]["code"])


def fhir_amounts(adjudications: list[Json]) -> dict[str, Decimal]:
    """Amount per category code; each amount category appears once."""
    amounts: dict[str, Decimal] = {}
    for entry in adjudications:
        if "amount" in entry and coded(entry["category"]) not in ("denialreason", "adjustmentreason"):
            code = coded(entry["category"])
            assert code not in amounts, f"category {code} twice"
            amounts[code] = entry["amount"]["value"]
    return amounts


def fhir_reasons(adjudications: list[Json]) -> list[str]:
    """The explained adjustments of a line, as "GROUP-CARC amount"."""
    out = []
    for entry in adjudications:
        if coded(entry["category"]) in ("denialreason", "adjustmentreason"):
            group = entry["extension"][0]["valueCoding"]["code"]
            out.append(f"{group}-{coded(entry['reason'])} {entry['amount']['value']}")
    return out


def assert_fhir_matches_eob(resource: Json, eob: Json) -> None:
    """Every amount of the FHIR resource equals the stored EOB's, field by field."""
    assert [item["sequence"] for item in resource["item"]] == [ln["line_number"] for ln in eob["lines"]]
    for item, line in zip(resource["item"], eob["lines"], strict=True):
        amounts = fhir_amounts(item["adjudication"])
        assert amounts["submitted"] == Decimal(line["billed_amount"])
        if line["status"] == "pended":
            assert set(amounts) == {"submitted"}
            continue
        expected = _expected_categories(line)
        assert amounts == expected, f"line {line['line_number']}"
        explained = [f"{a['group']}-{a['reason_code']} {a['amount']}" for a in line["adjustments"]]
        carried = {
            ("CO", "45"): "discount",
            ("PR", "1"): "deductible",
            ("PR", "2"): "coinsurance",
            ("PR", "3"): "copay",
        }
        for adjustment, text in zip(line["adjustments"], explained, strict=True):
            category = carried.get((adjustment["group"], adjustment["reason_code"]))
            if category is None:
                assert text in fhir_reasons(item["adjudication"])
            else:
                assert amounts[category] == Decimal(adjustment["amount"])
    totals = fhir_amounts(resource["total"])
    if all(line["status"] == "pended" for line in eob["lines"]):
        assert totals == {"submitted": Decimal(eob["totals"]["billed_amount"])}
    else:
        assert totals == _expected_categories(eob["totals"], lines=eob["lines"])
    if eob["status"] in ("paid", "partially_paid", "denied"):
        assert resource["payment"]["amount"]["value"] == Decimal(eob["totals"]["plan_paid_amount"])


def _expected_categories(amounts: Json, lines: list[Json] | None = None) -> dict[str, Decimal]:
    noncovered_adjustments = [
        a
        for line in (lines if lines is not None else [amounts])
        for a in line["adjustments"]
        if (a["group"], a["reason_code"]) not in {("CO", "45"), ("PR", "1"), ("PR", "2"), ("PR", "3")}
    ]
    return {
        "submitted": Decimal(amounts["billed_amount"]),
        "eligible": Decimal(amounts["allowed_amount"]),
        "discount": Decimal(amounts["network_discount_amount"]),
        "deductible": Decimal(amounts["deductible_amount"]),
        "copay": Decimal(amounts["copay_amount"]),
        "coinsurance": Decimal(amounts["coinsurance_amount"]),
        "noncovered": sum((Decimal(a["amount"]) for a in noncovered_adjustments), Decimal("0.00")),
        "benefit": Decimal(amounts["plan_paid_amount"]),
        "paidtoprovider": Decimal(amounts["plan_paid_amount"]),
        "memberliability": Decimal(amounts["patient_responsibility_amount"]),
    }


# ---------------------------------------------------------------- X12 835


def pyx12_errors(text: str) -> list[str]:
    """Every error pyx12 reports for the document (empty when it is valid)."""
    report = io.StringIO()
    valid = pyx12.x12n_document.x12n_document(
        param=pyx12.params.params(),
        src_file=io.StringIO(text),
        fd_997=None,
        fd_html=None,
        fd_json=report,
    )
    errors = list(_error_strings(json.loads(report.getvalue())))
    if not valid and not errors:
        errors.append("pyx12 rejected the document")
    return errors


def _error_strings(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for error in node.get("errors", []):
            yield str(error.get("err_str"))
        for value in node.values():
            if isinstance(value, list | dict):
                yield from _error_strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from _error_strings(value)


def segments(text: str) -> list[list[str]]:
    return [seg.strip().split("*") for seg in text.split("~") if seg.strip()]


def claim_loops(text: str) -> list[Json]:
    """Each CLP with its service lines: amounts as Decimals, CAS as "GROUP-CARC amount"."""
    claims: list[Json] = []
    for seg in segments(text):
        tag = seg[0]
        if tag == "CLP":
            claims.append({"clp": seg, "cas": [], "lines": []})
        elif tag == "SVC":
            claims[-1]["lines"].append({"svc": seg, "cas": [], "amt": {}, "lq": [], "dtm": {}, "ref": {}})
        elif tag == "CAS":
            target = claims[-1]["lines"][-1] if claims[-1]["lines"] else claims[-1]
            target["cas"] += [f"{seg[1]}-{seg[i]} {seg[i + 1]}" for i in range(2, len(seg), 3)]
        elif tag == "AMT" and claims and claims[-1]["lines"]:
            claims[-1]["lines"][-1]["amt"][seg[1]] = Decimal(seg[2])
        elif tag == "LQ":
            claims[-1]["lines"][-1]["lq"].append(seg[2])
        elif tag == "DTM" and claims and claims[-1]["lines"]:
            claims[-1]["lines"][-1]["dtm"][seg[1]] = seg[2]
        elif tag == "REF" and claims and claims[-1]["lines"]:
            claims[-1]["lines"][-1]["ref"][seg[1]] = seg[2]
    return claims


def cas_total(entries: list[str]) -> Decimal:
    return sum((Decimal(e.split(" ")[1]) for e in entries), Decimal(0))


def assert_balanced(text: str) -> None:
    """835 balancing: each line, each claim, and the transaction's payment."""
    loops = claim_loops(text)
    for loop in loops:
        clp = loop["clp"]
        line_cas = Decimal(0)
        for line in loop["lines"]:
            svc = line["svc"]
            assert Decimal(svc[2]) - Decimal(svc[3]) == cas_total(line["cas"]), svc
            line_cas += cas_total(line["cas"])
        assert Decimal(clp[3]) - Decimal(clp[4]) == line_cas + cas_total(loop["cas"]), clp
        pr = [e for line in loop["lines"] for e in line["cas"] if e.startswith("PR-")]
        assert Decimal(clp[5]) == cas_total(pr), clp
    bpr = next(seg for seg in segments(text) if seg[0] == "BPR")
    plb = sum((Decimal(seg[4]) for seg in segments(text) if seg[0] == "PLB"), Decimal(0))
    assert Decimal(bpr[2]) == sum((Decimal(loop["clp"][4]) for loop in loops), Decimal(0)) - plb
    assert Decimal(bpr[2]) >= 0


def assert_835_matches_eob(loop: Json, eob: Json, sign: int = 1) -> None:
    """One CLP loop carries the stored EOB's amounts field by field (negated for a reversal)."""
    totals = eob["totals"]
    clp = loop["clp"]
    assert clp[1] == eob["claim_id"][:38]
    assert Decimal(clp[3]) == sign * Decimal(totals["billed_amount"])
    assert Decimal(clp[4]) == sign * Decimal(totals["plan_paid_amount"])
    assert Decimal(clp[5]) == sign * Decimal(totals["patient_responsibility_amount"])
    assert len(loop["lines"]) == len(eob["lines"])
    for got, line in zip(loop["lines"], eob["lines"], strict=True):
        svc = got["svc"]
        assert svc[1].split(">") == ["HC", line["procedure_code"], *line["modifiers"]]
        assert Decimal(svc[2]) == sign * Decimal(line["billed_amount"])
        assert Decimal(svc[3]) == sign * Decimal(line["plan_paid_amount"])
        assert svc[5] == str(line["units"])
        assert got["amt"]["B6"] == sign * Decimal(line["allowed_amount"])
        assert got["dtm"]["472"] == line["service_date"].replace("-", "")
        assert got["ref"]["6R"] == str(line["line_number"])
        assert got["lq"] == line["remark_codes"]
        expected = {
            f"{a['group']}-{a['reason_code']}": sign * Decimal(a["amount"]) for a in line["adjustments"]
        }
        actual = {e.split(" ")[0]: Decimal(e.split(" ")[1]) for e in got["cas"]}
        assert actual == expected, f"line {line['line_number']}"
        by_reason = {
            a["reason_code"]: Decimal(a["amount"]) for a in line["adjustments"] if a["group"] == "PR"
        }
        assert by_reason.get("1", 0) == Decimal(line["deductible_amount"])
        assert by_reason.get("2", 0) == Decimal(line["coinsurance_amount"])
        assert by_reason.get("3", 0) == Decimal(line["copay_amount"])
