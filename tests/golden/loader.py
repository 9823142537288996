"""Builds the core's inputs from a golden case (JSON shaped like the API bodies) and renders the
core's output in the same shape as the case's `expected` block, so the two compare field by field.

A case file holds: `plan` (a code from reference.json or a plan object), `member` (omitted: M-100
covered from 2025-01-01 with no end; null: unknown member), optional `fee_schedules` (extra rates
merged into reference.json's), `contracts` (added to reference.json's), `authorizations`,
`accumulators`, `paid_lines`, `estimate`, the `claim` (API body; defaults below) and `expected`.
"""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

from service.domain.codes import CodeSet
from service.domain.eob import MONEY_FIELDS, Eob, EobLine, eob_to_dict, line_to_dict
from service.domain.model import (
    AccumulatorBalance,
    AdjudicationContext,
    AllowedBasis,
    AllowedBasisMethod,
    Authorization,
    AuthorizationStatus,
    Claim,
    ClaimLine,
    Contract,
    CopayCategory,
    DuplicateKey,
    FeeSchedule,
    Member,
    NetworkRates,
    OutOfNetworkBenefit,
    Plan,
    Rate,
    Tier,
    TierBenefit,
)
from service.domain.money import fmt

HERE = Path(__file__).parent
CASES = HERE / "cases"

Json = dict[str, Any]


def load_json(path: Path) -> Json:
    data: Json = json.loads(path.read_text(), parse_float=Decimal)
    return data


def _money(value: str | None) -> Decimal | None:
    return None if value is None else Decimal(value)


def _date(value: str | None) -> date | None:
    return None if value is None else date.fromisoformat(value)


def fee_schedules(rows_by_code: dict[str, list[Json]]) -> dict[str, FeeSchedule]:
    return {
        code: FeeSchedule(
            code,
            {
                (r["procedure_code"], r.get("modifier") or ""): Rate(
                    allowed_amount=_money(r.get("allowed_amount")),
                    percent_of_billed=_money(r.get("percent_of_billed")),
                )
                for r in rows
            },
        )
        for code, rows in rows_by_code.items()
    }


def plan(code: str, body: Json, schedules: dict[str, FeeSchedule]) -> Plan:
    oon = body["out_of_network"]
    return Plan(
        code=code,
        network_code=body["network_code"],
        in_network=TierBenefit(**{k: Decimal(v) for k, v in body["in_network"].items()}),
        out_of_network=_out_of_network(oon, schedules) if oon else None,
        copay_categories=tuple(
            CopayCategory(
                name=c["name"],
                procedure_codes=CodeSet.parse(c["procedure_codes"]),
                in_network_copay=_money(c["in_network_copay"]),
                out_of_network_copay=_money(c["out_of_network_copay"]),
                deductible_applies=c["deductible_applies"],
                coinsurance_rate=_money(c["coinsurance_rate"]),
            )
            for c in body["copay_categories"]
        ),
        prior_authorization_codes=CodeSet.parse(body["prior_authorization_codes"]),
    )


def _out_of_network(body: Json, schedules: dict[str, FeeSchedule]) -> OutOfNetworkBenefit:
    basis = body["allowed_basis"]
    schedule_code = basis.get("fee_schedule_code")
    return OutOfNetworkBenefit(
        deductible=Decimal(body["deductible"]),
        out_of_pocket_max=Decimal(body["out_of_pocket_max"]),
        coinsurance_rate=Decimal(body["coinsurance_rate"]),
        allowed_basis=AllowedBasis(
            method=AllowedBasisMethod(basis["method"]),
            percent=Decimal(basis["percent"]),
            fee_schedule=schedules[schedule_code] if schedule_code else None,
        ),
    )


def contract(body: Json, schedules: dict[str, FeeSchedule]) -> Contract:
    return Contract(
        id=body["id"],
        provider_npi=body["provider_npi"],
        effective_from=date.fromisoformat(body["effective_from"]),
        effective_to=_date(body.get("effective_to")),
        fee_schedule=schedules[body["fee_schedule_code"]],
        timely_filing_days=body.get("timely_filing_days"),
        unlisted_percent_of_billed=_money(body.get("unlisted_percent_of_billed")),
    )


def authorization(body: Json) -> Authorization:
    return Authorization(
        id=body["id"],
        authorization_number=body["authorization_number"],
        procedure_codes=CodeSet.parse(body["procedure_codes"]),
        units=body["units"],
        units_used=body.get("units_used", 0),
        valid_from=date.fromisoformat(body["valid_from"]),
        valid_to=date.fromisoformat(body["valid_to"]),
        provider_npi=body.get("provider_npi"),
        status=AuthorizationStatus(body.get("status", "approved")),
    )


def claim(body: Json, name: str) -> Claim:
    lines = tuple(
        ClaimLine(
            line_number=ln["line_number"],
            procedure_code=ln["procedure_code"],
            modifiers=tuple(ln.get("modifiers", ())),
            units=ln.get("units", 1),
            billed_amount=Decimal(ln["billed_amount"]),
            service_date=date.fromisoformat(ln["service_date"]),
            authorization_number=ln.get("authorization_number"),
        )
        for ln in body["lines"]
    )
    return Claim(
        claim_id=body.get("claim_id", name),
        member_id=body["member_id"],
        billing_provider_npi=body["billing_provider_npi"],
        facility_npi=body.get("facility_npi"),
        place_of_service=body.get("place_of_service", "11"),
        emergency=body.get("emergency", False),
        received_date=_date(body.get("received_date")) or max(ln.service_date for ln in lines),
        diagnosis_codes=tuple(body.get("diagnosis_codes", ["J06.9"])),
        lines=lines,
    )


DEFAULT_MEMBER = {"member_id": "M-100", "coverage_from": "2025-01-01", "coverage_to": None}


def inputs(case: Json, name: str) -> tuple[Claim, AdjudicationContext]:
    """The claim and the context the shell would load for it from this reference data."""
    reference = load_json(HERE / "reference.json")
    rows = {**reference["fee_schedules"]}
    for code, extra in case.get("fee_schedules", {}).items():
        rows[code] = rows.get(code, []) + extra
    schedules = fee_schedules(rows)
    plan_ref = case["plan"]
    plan_body = reference["plans"][plan_ref] if isinstance(plan_ref, str) else plan_ref
    the_plan = plan(plan_ref if isinstance(plan_ref, str) else plan_body["code"], plan_body, schedules)
    the_claim = claim(case["claim"], name)
    member_body = case.get("member", DEFAULT_MEMBER)
    network = [
        contract(c, schedules)
        for c in reference["contracts"] + case.get("contracts", [])
        if c["network_code"] == the_plan.network_code
    ]
    member = None
    if member_body is not None:
        member = Member(
            member_body["member_id"],
            the_plan,
            date.fromisoformat(member_body["coverage_from"]),
            _date(member_body["coverage_to"]),
        )
    return the_claim, AdjudicationContext(
        member=member,
        billing_provider_contracts=tuple(
            c for c in network if c.provider_npi == the_claim.billing_provider_npi
        ),
        facility_contracts=tuple(c for c in network if c.provider_npi == the_claim.facility_npi),
        network_rates=tuple(NetworkRates.of(c) for c in network),
        authorizations=tuple(authorization(a) for a in case.get("authorizations", [])),
        accumulators={
            (a["plan_year"], Tier(a["tier"])): AccumulatorBalance(
                Decimal(a["deductible_met"]), Decimal(a["out_of_pocket_met"])
            )
            for a in case.get("accumulators", [])
        },
        paid_lines=frozenset(
            DuplicateKey(
                p["billing_provider_npi"],
                p["procedure_code"],
                tuple(sorted(p["modifiers"])),
                date.fromisoformat(p["service_date"]),
            )
            for p in case.get("paid_lines", [])
        ),
    )


# ---------------------------------------------------------------- comparing


def actual_line(ln: EobLine) -> Json:
    out = line_to_dict(ln)
    out["adjustments"] = [f"{a['group']}-{a['reason_code']} {a['amount']}" for a in out["adjustments"]]
    out["accumulator_tier"] = ln.accumulator_tier.value if ln.accumulator_tier else None
    use = ln.authorization_use
    out["authorization_use"] = {"authorization_id": use.authorization_id, "units": use.units} if use else None
    return out


def expected_line(exp: Json, submitted: ClaimLine, claim_network_status: str | None) -> Json:
    """The expected line with the case's omissions filled in: amounts not given are 0.00, no
    adjustments or remarks, the claim's network status, and for a paid line the accumulator tier
    it is cost-shared in."""
    out: Json = {
        "line_number": submitted.line_number,
        "procedure_code": submitted.procedure_code,
        "modifiers": list(submitted.modifiers),
        "units": submitted.units,
        "service_date": submitted.service_date.isoformat(),
        "network_status": claim_network_status,
        "protected": False,
        "adjustments": [],
        "remark_codes": [],
        "authorization_use": None,
        **{f: "0.00" for f in MONEY_FIELDS},
        "billed_amount": fmt(submitted.billed_amount),
    }
    out.update(exp)
    if "accumulator_tier" not in exp:
        in_terms = out["network_status"] == "in_network" or out["protected"]
        paid_tier = "in_network" if in_terms else "out_of_network"
        out["accumulator_tier"] = paid_tier if out["status"] == "paid" else None
    return out


def actual_claim(eob: Eob) -> Json:
    out = eob_to_dict(eob)
    out["postings"] = [
        {
            "plan_year": p.plan_year,
            "tier": p.tier.value,
            "deductible": fmt(p.deductible),
            "out_of_pocket": fmt(p.out_of_pocket),
        }
        for p in eob.postings
    ]
    return out
