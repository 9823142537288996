"""Under concurrent load the books still balance: no 5xx, every EOB reads back as posted, each
member's accumulators equal the sums over their stored EOBs and stay within the plan's limits,
authorization units are never over-spent, and racing identical submissions store one claim.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, text

from tests import factories as f
from tests.system import scenario
from tests.system.conftest import FULL_KEY, READ_KEY
from tests.system.harness import FIGURES, ServiceProcess, percentile

pytestmark = pytest.mark.slow

CLAIMS = 400
CLIENTS = 32
VOID_EVERY = 25  # some claims are voided while the load runs: their postings must be reversed
RACERS = 20
TIME_LIMIT = 240.0  # seconds for the whole load; each request has its own 30 s timeout


def _submit(client: httpx.Client, claim: dict[str, Any], n: int) -> dict[str, Any]:
    started = time.perf_counter()
    posted = client.post("/v1/claims", json=claim)
    outcome = {"claim": claim, "post": posted, "seconds": time.perf_counter() - started, "void": None}
    if posted.status_code == 201 and n % VOID_EVERY == 0:
        outcome["void"] = client.post(f"/v1/claims/{claim['claim_id']}/void")
    return outcome


def test_concurrent_load_keeps_accumulators_equal_to_stored_eobs(
    live_service: ServiceProcess, system_db: Engine
) -> None:
    factory = scenario.ClaimFactory(seed=400, prefix="LOAD")
    claims = [factory.claim(n) for n in range(CLAIMS)]
    assert len({c["member_id"] for c in claims}) == scenario.MEMBER_COUNT

    started = time.monotonic()
    limits = httpx.Limits(max_connections=CLIENTS, max_keepalive_connections=CLIENTS)
    with live_service.client(FULL_KEY, limits=limits) as client, ThreadPoolExecutor(CLIENTS) as pool:
        outcomes = list(
            pool.map(lambda nc: _submit(client, nc[1], nc[0]), enumerate(claims), timeout=TIME_LIMIT)
        )
    elapsed = time.monotonic() - started

    statuses = Counter(o["post"].status_code for o in outcomes)
    void_statuses = Counter(o["void"].status_code for o in outcomes if o["void"] is not None)
    assert statuses == {201: CLAIMS}, {s: n for s, n in statuses.items()}
    assert void_statuses == {200: len(range(0, CLAIMS, VOID_EVERY))}, void_statuses
    for o in outcomes:
        assert o["post"].headers["content-type"] == "application/json"

    # Every EOB reads back byte for byte as answered (a voided one as its void answered).
    final = {o["claim"]["claim_id"]: (o["void"] or o["post"]) for o in outcomes}
    with live_service.client(READ_KEY) as reader:
        stored = scenario.fetch_eobs(reader, list(final))
        changed = [cid for cid, r in stored.items() if r.content != final[cid].content]
        assert not changed, f"claims that read back differently: {changed[:5]}"
        eobs = [r.json() for r in stored.values()]
        members = [scenario.member_id(n) for n in range(scenario.MEMBER_COUNT)]
        buckets = scenario.check_accumulators(reader, members, eobs)
    assert scenario.check_stored_claims_complete(system_db) == CLAIMS
    units = scenario.check_authorization_units(system_db)

    line_statuses = Counter(line["status"] for e in eobs for line in e["lines"])
    caps = scenario.caps_reached(eobs)
    # The load must reach what it claims to check: limits, denials, pends and protected lines.
    assert caps["deductible"] >= 5 and caps["out_of_pocket_max"] >= 1, caps
    assert set(line_statuses) == {"paid", "denied", "pended"}, line_statuses
    assert any(line["protected"] for e in eobs for line in e["lines"])
    assert units > 0

    latencies = [o["seconds"] for o in outcomes]
    FIGURES["load"] = {
        "claims": CLAIMS,
        "clients": CLIENTS,
        "members": scenario.MEMBER_COUNT,
        "voids": sum(void_statuses.values()),
        "lines": sum(line_statuses.values()),
        "seconds": round(elapsed, 1),
        "claims_per_s": round(CLAIMS / elapsed, 1),
        "p50_ms": round(percentile(latencies, 0.5) * 1000),
        "p95_ms": round(percentile(latencies, 0.95) * 1000),
        "buckets_checked": buckets,
        "deductibles_met": caps["deductible"],
        "oop_max_met": caps["out_of_pocket_max"],
        "auth_units_used": units,
    }


def test_identical_submissions_racing_store_one_claim(
    live_service: ServiceProcess, system_db: Engine
) -> None:
    with live_service.client(FULL_KEY) as admin:
        f.member(admin, member_id="M-SYS-RACE", coverage_from="2025-01-01")
    claim = {
        "claim_id": "RACE-0001",
        "member_id": "M-SYS-RACE",
        "billing_provider_npi": f.WORKED_NPI,
        "place_of_service": "11",
        "received_date": "2026-03-05",
        "diagnosis_codes": ["Z12.11"],
        "lines": [
            {
                "line_number": 1,
                "procedure_code": "45378",
                "units": 1,
                "billed_amount": "1500.00",
                "service_date": "2026-03-01",
            },
            {
                "line_number": 2,
                "procedure_code": "99213",
                "units": 1,
                "billed_amount": 200,
                "service_date": "2026-03-01",
            },
        ],
    }
    start = threading.Barrier(RACERS, timeout=30)

    def race(_: int) -> httpx.Response:
        with live_service.client(FULL_KEY) as client:
            client.get("/healthz")  # connect first, so the barrier releases requests, not handshakes
            start.wait()
            return client.post("/v1/claims", json=claim)

    with ThreadPoolExecutor(RACERS) as pool:
        responses = list(pool.map(race, range(RACERS), timeout=120))

    assert sorted(r.status_code for r in responses) == [200] * (RACERS - 1) + [201]
    assert len({r.content for r in responses}) == 1, "racing submissions got different EOBs"
    with system_db.connect() as conn:
        stored = conn.execute(text("SELECT count(*) FROM claims WHERE claim_id = 'RACE-0001'")).scalar_one()
    assert stored == 1
    eob = responses[0].json()
    assert eob["totals"]["deductible_amount"] != "0.00"  # so posting twice would show
    with live_service.client(READ_KEY) as reader:
        assert scenario.check_accumulators(reader, ["M-SYS-RACE"], [eob]) >= 1
    FIGURES["idempotency_race"] = {"racers": RACERS, "stored": stored, "distinct_bodies": 1}
