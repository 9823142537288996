"""FHIR ExplanationOfBenefit: every golden EOB validates (fhir.resources R4B) and carries the
stored EOB's amounts field by field."""

from __future__ import annotations

import copy
import json
from decimal import Decimal
from pathlib import Path

import pytest

from service.export.fhir import CARC, PROFILE, explanation_of_benefit, to_json
from tests.export.support import (
    GOLDEN_FILES,
    PAYER,
    VOIDED_AT,
    assert_fhir_matches_eob,
    coded,
    golden_claim,
    stored,
    validated_fhir,
)

GOLDEN = {path.stem: path for path in GOLDEN_FILES}


def _export(path: Path, **kwargs: bool) -> dict:  # type: ignore[type-arg]
    claim = golden_claim(path)
    if kwargs.get("voided"):
        claim = stored(claim.eob, dict(claim.request), voided=True)
    _, resource = validated_fhir(to_json(explanation_of_benefit(claim, PAYER)))
    return resource


def test_the_golden_cases_are_there() -> None:
    assert len(GOLDEN_FILES) >= 25


@pytest.mark.parametrize("path", GOLDEN_FILES, ids=lambda p: p.stem)
def test_every_golden_eob_validates_and_matches_field_by_field(path: Path) -> None:
    claim = golden_claim(path)
    _, resource = validated_fhir(to_json(explanation_of_benefit(claim, PAYER)))
    assert resource["meta"]["profile"] == [PROFILE]
    assert resource["identifier"][0]["value"] == claim.eob["claim_id"]
    assert_fhir_matches_eob(resource, dict(claim.eob))


@pytest.mark.parametrize("path", GOLDEN_FILES, ids=lambda p: p.stem)
def test_every_golden_eob_validates_once_voided(path: Path) -> None:
    resource = _export(path, voided=True)
    assert resource["status"] == "cancelled"
    assert "payment" not in resource
    assert resource["meta"]["lastUpdated"] == VOIDED_AT.isoformat()


def test_worked_example_reads_as_carin_blue_button() -> None:
    resource = _export(GOLDEN["01_worked_example"])
    assert resource["status"] == "active" and resource["outcome"] == "complete"
    assert coded(resource["type"]) == "professional" and resource["use"] == "claim"
    assert resource["patient"]["identifier"]["value"] == "M-100"
    assert resource["provider"]["identifier"]["system"] == "http://hl7.org/fhir/sid/us-npi"
    assert resource["billablePeriod"] == {"start": "2026-03-01", "end": "2026-03-01"}
    assert resource["diagnosis"][0]["diagnosisCodeableConcept"]["coding"][0] == {
        "system": "http://hl7.org/fhir/sid/icd-10-cm",
        "code": "J06.9",
    }
    assert coded(resource["payment"]["type"]) == "paid"
    assert resource["payment"]["amount"] == {"value": Decimal("85.00"), "currency": "USD"}
    item = resource["item"][0]
    assert item["productOrService"]["coding"][0] == {
        "system": "http://www.ama-assn.org/go/cpt",
        "code": "99213",
    }
    statuses = [e for e in item["adjudication"] if coded(e["category"]) == "benefitpaymentstatus"]
    assert [coded(s["reason"]) for s in statuses] == ["innetwork"]
    in_network = next(b for b in resource["benefitBalance"] if coded(b["network"]) == "in")
    deductible, out_of_pocket = in_network["financial"]
    assert deductible["allowedMoney"]["value"] == Decimal("500.00")
    assert out_of_pocket["usedMoney"]["value"] == Decimal("25.00")
    assert len(resource["benefitBalance"]) == 2


def test_money_is_written_as_exact_json_numbers() -> None:
    text = to_json(explanation_of_benefit(golden_claim(GOLDEN["01_worked_example"]), PAYER))
    assert '"value":85.00,"currency":"USD"' in text
    assert json.loads(text)["payment"]["amount"]["value"] == 85


def test_denied_line_gives_its_carc_and_group_as_denial_reason() -> None:
    resource = _export(GOLDEN["09_in_network_without_authorization"])
    reasons = [
        e for item in resource["item"] for e in item["adjudication"] if coded(e["category"]) == "denialreason"
    ]
    assert reasons, "a denied line explains its denial"
    reason = reasons[0]
    assert reason["reason"]["coding"][0]["system"] == CARC
    assert coded(reason["reason"]) == "197"
    assert reason["extension"][0]["valueCoding"]["code"] == "CO"
    assert coded(resource["payment"]["type"]) in {"denied", "partiallypaid"}


def test_balance_billing_is_noncovered_with_its_pr_45_reason() -> None:
    resource = _export(GOLDEN["05_out_of_network_balance_billing"])
    item = resource["item"][0]
    noncovered = next(e for e in item["adjudication"] if coded(e["category"]) == "noncovered")
    reason = next(e for e in item["adjudication"] if coded(e["category"]) == "adjustmentreason")
    assert coded(reason["reason"]) == "45" and reason["extension"][0]["valueCoding"]["code"] == "PR"
    assert noncovered["amount"]["value"] == reason["amount"]["value"] > 0
    statuses = [e for e in item["adjudication"] if coded(e["category"]) == "benefitpaymentstatus"]
    assert coded(statuses[0]["reason"]) == "outofnetwork"


def test_protected_line_is_paid_in_network_with_remark_notes() -> None:
    resource = _export(GOLDEN["07_emergency_out_of_network_qpa"])
    item = resource["item"][0]
    status = next(e for e in item["adjudication"] if coded(e["category"]) == "benefitpaymentstatus")
    assert coded(status["reason"]) == "innetwork"
    notes = {note["number"]: note["text"] for note in resource["processNote"]}
    assert [notes[n].split(":")[0] for n in item["noteNumber"]] == ["N830", "N864"]


def test_pended_claim_is_queued_with_only_submitted_amounts() -> None:
    resource = _export(GOLDEN["23_pended_missing_price"])
    assert resource["outcome"] == "queued"
    assert "payment" not in resource
    assert [coded(t["category"]) for t in resource["total"]] == ["submitted"]
    notes = [note["text"] for note in resource["processNote"]]
    assert any(text.startswith("N448") for text in notes)


def test_unknown_member_has_no_balances_and_other_network_status() -> None:
    resource = _export(GOLDEN["18_unknown_member"])
    assert "benefitBalance" not in resource
    assert coded(resource["adjudication"][0]["reason"]) == "other"
    assert "display" not in resource["insurance"][0]["coverage"]


def test_claim_ids_that_fhir_ids_cannot_hold_keep_the_exact_identifier() -> None:
    claim = golden_claim(GOLDEN["01_worked_example"])
    eob = copy.deepcopy(dict(claim.eob))
    eob["claim_id"] = "CLM_2026:0001"
    _, resource = validated_fhir(to_json(explanation_of_benefit(stored(eob, dict(claim.request)), PAYER)))
    assert resource["id"].startswith("claim-") and "_" not in resource["id"]
    assert resource["identifier"][0]["value"] == "CLM_2026:0001"


def test_modifiers_use_the_code_system_that_defines_them() -> None:
    claim = golden_claim(GOLDEN["19_modifier_rate_and_fallback"])
    resource = _export(GOLDEN["19_modifier_rate_and_fallback"])
    for item, line in zip(resource["item"], claim.eob["lines"], strict=True):
        got = [(m["coding"][0]["system"].rsplit("/", 1)[-1], coded(m)) for m in item.get("modifier", [])]
        expected = [("cpt" if m.isdigit() else "HCPCSReleaseCodeSets", m) for m in line["modifiers"]]
        assert got == expected
