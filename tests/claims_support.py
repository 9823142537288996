"""Helpers for the claims tests: claim bodies, posting through HTTP, and checking every EOB.

Every EOB a helper receives is turned back into the domain Eob and run through
check_invariants, so no test can see an EOB that breaks adjudication.md's invariants unnoticed.
"""

from __future__ import annotations

import copy
from datetime import date
from decimal import Decimal
from typing import Any

import httpx
from fastapi.testclient import TestClient

from service.domain.eob import (
    AccumulatorSnapshot,
    Adjustment,
    ClaimStatus,
    Eob,
    EobLine,
    Group,
    LineStatus,
    TierAccumulators,
    Totals,
    check_invariants,
)
from service.domain.model import Tier
from tests.conftest import READ, WRITE
from tests.factories import WORKED_MEMBER, WORKED_NPI

Json = dict[str, Any]

# The worked example of adjudication.md, exactly as api.md shows the EOB.
WORKED_CLAIM: Json = {
    "claim_id": "CLM-0001",
    "member_id": WORKED_MEMBER,
    "billing_provider_npi": WORKED_NPI,
    "facility_npi": None,
    "place_of_service": "11",
    "emergency": False,
    "received_date": "2026-03-05",
    "diagnosis_codes": ["J06.9"],
    "lines": [
        {
            "line_number": 1,
            "procedure_code": "99213",
            "modifiers": [],
            "units": 1,
            "billed_amount": "200.00",
            "service_date": "2026-03-01",
            "authorization_number": None,
        }
    ],
}

WORKED_EOB: Json = {
    "claim_id": "CLM-0001",
    "status": "paid",
    "member_id": "M-100",
    "plan_code": "GOLD-PPO",
    "billing_provider_npi": "1234567893",
    "network_status": "in_network",
    "lines": [
        {
            "line_number": 1,
            "procedure_code": "99213",
            "modifiers": [],
            "units": 1,
            "service_date": "2026-03-01",
            "status": "paid",
            "network_status": "in_network",
            "protected": False,
            "billed_amount": "200.00",
            "allowed_amount": "110.00",
            "network_discount_amount": "90.00",
            "deductible_amount": "0.00",
            "copay_amount": "25.00",
            "coinsurance_amount": "0.00",
            "plan_paid_amount": "85.00",
            "patient_responsibility_amount": "25.00",
            "balance_billing_amount": "0.00",
            "adjustments": [
                {"group": "CO", "reason_code": "45", "amount": "90.00"},
                {"group": "PR", "reason_code": "3", "amount": "25.00"},
            ],
            "remark_codes": [],
        }
    ],
    "totals": {
        "billed_amount": "200.00",
        "allowed_amount": "110.00",
        "network_discount_amount": "90.00",
        "deductible_amount": "0.00",
        "copay_amount": "25.00",
        "coinsurance_amount": "0.00",
        "plan_paid_amount": "85.00",
        "patient_responsibility_amount": "25.00",
        "balance_billing_amount": "0.00",
    },
    "accumulators": {
        "plan_year": 2026,
        "in_network": {
            "deductible": "500.00",
            "deductible_met": "0.00",
            "out_of_pocket_max": "3000.00",
            "out_of_pocket_met": "25.00",
        },
        "out_of_network": {
            "deductible": "1000.00",
            "deductible_met": "0.00",
            "out_of_pocket_max": "6000.00",
            "out_of_pocket_met": "0.00",
        },
    },
}


def claim_body(claim_id: str = "CLM-0001", **overrides: Any) -> Json:
    """The worked example's claim with `claim_id` and top-level overrides."""
    return copy.deepcopy({**WORKED_CLAIM, "claim_id": claim_id, **overrides})


def line(line_number: int = 1, **overrides: Any) -> Json:
    """A claim line like the worked example's, with overrides."""
    return {**copy.deepcopy(WORKED_CLAIM["lines"][0]), "line_number": line_number, **overrides}


# ---------------------------------------------------------------- EOB JSON -> domain Eob


def _money(text: str) -> Decimal:
    return Decimal(text)


def _tier(text: str | None) -> Tier | None:
    return Tier(text) if text else None


def _line(d: Json) -> EobLine:
    return EobLine(
        line_number=d["line_number"],
        procedure_code=d["procedure_code"],
        modifiers=tuple(d["modifiers"]),
        units=d["units"],
        service_date=date.fromisoformat(d["service_date"]),
        status=LineStatus(d["status"]),
        network_status=_tier(d["network_status"]),
        protected=d["protected"],
        adjustments=tuple(
            Adjustment(Group(a["group"]), a["reason_code"], _money(a["amount"])) for a in d["adjustments"]
        ),
        remark_codes=tuple(d["remark_codes"]),
        **{f: _money(d[f]) for f in _MONEY},
    )


_MONEY = tuple(Totals.__dataclass_fields__)


def _tier_accumulators(d: Json | None) -> TierAccumulators | None:
    return TierAccumulators(**{k: _money(v) for k, v in d.items()}) if d else None


def eob_from_json(d: Json) -> Eob:
    accumulators = d["accumulators"]
    snapshot = None
    if accumulators is not None:
        in_network = _tier_accumulators(accumulators["in_network"])
        assert in_network is not None
        snapshot = AccumulatorSnapshot(
            accumulators["plan_year"], in_network, _tier_accumulators(accumulators["out_of_network"])
        )
    return Eob(
        claim_id=d["claim_id"] or "",
        status=ClaimStatus(d["status"]),
        member_id=d["member_id"],
        plan_code=d["plan_code"],
        billing_provider_npi=d["billing_provider_npi"],
        network_status=_tier(d["network_status"]),
        lines=tuple(_line(ln) for ln in d["lines"]),
        totals=Totals(**{f: _money(d["totals"][f]) for f in _MONEY}),
        accumulators=snapshot,
    )


def checked_eob(response: httpx.Response, status: int) -> Json:
    """Assert the status, that the body is an EOB satisfying every invariant, and return it."""
    assert response.status_code == status, f"{response.status_code} {response.text}"
    assert response.headers["content-type"] == "application/json"
    eob: Json = response.json()
    problems = check_invariants(eob_from_json(eob))
    assert problems == [], f"EOB {eob['claim_id']} breaks invariants: {problems}"
    return eob


# ---------------------------------------------------------------- calls


def submit(client: TestClient, body: Json, status: int = 201) -> Json:
    return checked_eob(client.post("/v1/claims", json=body, headers=WRITE), status)


def void(client: TestClient, claim_id: str) -> Json:
    return checked_eob(client.post(f"/v1/claims/{claim_id}/void", headers=WRITE), 200)


def accumulators(client: TestClient, member_id: str = WORKED_MEMBER, plan_year: int = 2026) -> Json:
    response = client.get(f"/v1/members/{member_id}/accumulators?plan_year={plan_year}", headers=READ)
    assert response.status_code == 200, response.text
    result: Json = response.json()
    return result


def units_used(client: TestClient, authorization_number: str) -> int:
    response = client.get(f"/v1/authorizations/{authorization_number}")
    assert response.status_code == 200, response.text
    used: int = response.json()["units_used"]
    return used


def adjustment_codes(eob_line: Json) -> list[str]:
    return [f"{a['group']}-{a['reason_code']}" for a in eob_line["adjustments"]]
