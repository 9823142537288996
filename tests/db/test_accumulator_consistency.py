"""Invariant 6 in the database: after any sequence of claims and voids, every accumulator equals
what the member's non-voided claims posted to it, and never exceeds the plan's limits."""

from __future__ import annotations

import random
from collections import defaultdict
from decimal import Decimal

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from service.db.models import (
    AccumulatorPostingRow,
    AccumulatorRow,
    ClaimLineRow,
    ClaimRow,
    MemberRow,
    PlanRow,
)
from tests.claims_support import Json, claim_body, line, submit, void
from tests.factories import authorization, load_worked_example, make_npi, member, plan, provider

Bucket = tuple[int, int, str]  # member pk, plan year, tier
ZERO = Decimal("0.00")

SMALL_PLAN: Json = {
    "code": "SMALL",
    "in_network": {"deductible": "300.00", "out_of_pocket_max": "800.00", "coinsurance_rate": "0.20"},
    "out_of_network": {
        "deductible": "600.00",
        "out_of_pocket_max": "1500.00",
        "coinsurance_rate": "0.40",
        "allowed_basis": {"method": "percent_of_billed", "percent": "0.70"},
    },
    "copay_categories": [],
    "prior_authorization_codes": ["27447"],
}
MEMBERS = ["M-100", "M-S1", "M-S2"]
CODES = ["99213", "99214", "70551", "27447"]


@pytest.fixture
def world(admin: TestClient) -> dict[str, str]:
    """The worked example, a small plan that reaches its limits quickly, and an OON provider."""
    load_worked_example(admin)
    plan(admin, **SMALL_PLAN)
    for member_id in ("M-S1", "M-S2"):
        member(admin, member_id=member_id, plan_code="SMALL", coverage_from="2025-01-01")
        authorization(
            admin,
            authorization_number=f"PA-{member_id}",
            member_id=member_id,
            procedure_codes=["27447"],
            units=3,
            valid_from="2025-01-01",
        )
    out_of_network = make_npi(50)
    provider(admin, npi=out_of_network, name="Out of network")
    return {"in": "1234567893", "out": out_of_network}


def _random_claim(rng: random.Random, n: int, npis: dict[str, str]) -> Json:
    lines = [
        line(
            i,
            procedure_code=rng.choice(CODES),
            billed_amount=f"{rng.randint(50, 3000)}.{rng.randint(0, 99):02d}",
            service_date=f"{rng.choice(['2025-12', '2026-01', '2026-02'])}-{rng.randint(1, 28):02d}",
        )
        for i in range(1, rng.randint(2, 4))
    ]
    return claim_body(
        f"R-{n}",
        member_id=rng.choice(MEMBERS),
        billing_provider_npi=npis[rng.choice(["in", "in", "out"])],
        emergency=rng.random() < 0.15,
        received_date="2026-03-31",
        lines=lines,
    )


def _buckets_from_postings(engine: Engine) -> dict[Bucket, tuple[Decimal, Decimal]]:
    sums: dict[Bucket, tuple[Decimal, Decimal]] = defaultdict(lambda: (ZERO, ZERO))
    stmt = (
        select(AccumulatorPostingRow)
        .join(ClaimRow, AccumulatorPostingRow.claim_id == ClaimRow.id)
        .where(ClaimRow.status != "voided")
    )
    with engine.connect() as conn:
        for p in conn.execute(stmt):
            key = (p.member_id, p.plan_year, p.tier)
            ded, oop = sums[key]
            sums[key] = (ded + p.deductible, oop + p.out_of_pocket)
    return sums


def _buckets_from_lines(engine: Engine) -> dict[Bucket, tuple[Decimal, Decimal]]:
    """The same sums computed independently, from the adjudicated lines themselves."""
    sums: dict[Bucket, tuple[Decimal, Decimal]] = defaultdict(lambda: (ZERO, ZERO))
    stmt = (
        select(ClaimLineRow)
        .join(ClaimRow, ClaimLineRow.claim_id == ClaimRow.id)
        .where(ClaimRow.status != "voided", ClaimLineRow.accumulator_tier.is_not(None))
    )
    with engine.connect() as conn:
        for ln in conn.execute(stmt):
            assert ln.member_id is not None
            key = (ln.member_id, ln.service_date.year, ln.accumulator_tier)
            ded, oop = sums[key]
            share = ln.deductible_amount + ln.copay_amount + ln.coinsurance_amount
            sums[key] = (ded + ln.deductible_amount, oop + share)
    return sums


def _accumulator_rows(engine: Engine) -> dict[Bucket, tuple[Decimal, Decimal]]:
    with engine.connect() as conn:
        return {
            (a.member_id, a.plan_year, a.tier): (a.deductible_met, a.out_of_pocket_met)
            for a in conn.execute(select(AccumulatorRow))
        }


def _nonzero(buckets: dict[Bucket, tuple[Decimal, Decimal]]) -> dict[Bucket, tuple[Decimal, Decimal]]:
    return {k: v for k, v in buckets.items() if v != (ZERO, ZERO)}


def _limits(engine: Engine) -> dict[tuple[int, str], tuple[Decimal | None, Decimal | None]]:
    stmt = select(
        MemberRow.id,
        PlanRow.in_deductible,
        PlanRow.in_out_of_pocket_max,
        PlanRow.oon_deductible,
        PlanRow.oon_out_of_pocket_max,
    ).join(PlanRow, MemberRow.plan_id == PlanRow.id)
    limits: dict[tuple[int, str], tuple[Decimal | None, Decimal | None]] = {}
    with engine.connect() as conn:
        for member_pk, in_ded, in_oop, oon_ded, oon_oop in conn.execute(stmt):
            limits[(member_pk, "in_network")] = (in_ded, in_oop)
            limits[(member_pk, "out_of_network")] = (oon_ded, oon_oop)
    return limits


def assert_accumulators_consistent(engine: Engine) -> int:
    """Check invariant 6; return how many buckets sit at a limit (so a test can see it is reached)."""
    rows = _accumulator_rows(engine)
    assert _nonzero(rows) == _nonzero(_buckets_from_postings(engine))
    assert _nonzero(rows) == _nonzero(_buckets_from_lines(engine))
    limits = _limits(engine)
    at_limit = 0
    for (member_pk, _, tier), (deductible_met, out_of_pocket_met) in rows.items():
        deductible, out_of_pocket_max = limits[(member_pk, tier)]
        assert deductible is not None and out_of_pocket_max is not None, "posted to an uncovered tier"
        assert ZERO <= deductible_met <= deductible
        assert ZERO <= out_of_pocket_met <= out_of_pocket_max
        at_limit += out_of_pocket_met == out_of_pocket_max
    return at_limit


@pytest.mark.parametrize("seed", [1, 2])
def test_accumulators_equal_the_postings_of_non_voided_claims(
    client: TestClient, world: dict[str, str], engine: Engine, seed: int
) -> None:
    rng = random.Random(seed)
    submitted: list[str] = []
    limits_reached = 0
    for n in range(40):
        body = _random_claim(rng, n, world)
        submit(client, body)
        submitted.append(body["claim_id"])
        if rng.random() < 0.3:
            void(client, rng.choice(submitted))
        if n % 5 == 4:
            limits_reached += assert_accumulators_consistent(engine)
    assert limits_reached, "the sequence should drive some member to an out-of-pocket maximum"

    for claim_id in submitted:
        void(client, claim_id)
    assert_accumulators_consistent(engine)
    assert _nonzero(_accumulator_rows(engine)) == {}
