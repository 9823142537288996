"""kill -9 in the middle of a load: what was acknowledged survives unchanged, nothing is half
stored, the accumulators still equal the stored claims, and retrying completes the set once.
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

from tests.system import scenario
from tests.system.conftest import FULL_KEY, READ_KEY
from tests.system.harness import FIGURES, ServiceProcess

pytestmark = pytest.mark.slow

CLAIMS = 300
CLIENTS = 16
KILL_AFTER = 100  # acknowledged claims before the kill: the rest are in flight or not yet sent
TIME_LIMIT = 180.0


def _stored_claim_ids(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return list(conn.execute(text("SELECT claim_id FROM claims ORDER BY claim_id")).scalars())


def _check_books(service: ServiceProcess, engine: Engine) -> list[dict[str, Any]]:
    """Accumulators equal the sums over the stored claims; returns the stored EOBs."""
    stored = _stored_claim_ids(engine)
    with service.client(READ_KEY) as reader:
        eobs = [r.json() for r in scenario.fetch_eobs(reader, stored).values()]
        members = [scenario.member_id(n) for n in range(scenario.MEMBER_COUNT)]
        assert scenario.check_accumulators(reader, members, eobs) > 0
    scenario.check_stored_claims_complete(engine)
    scenario.check_authorization_units(engine)
    return eobs


def test_kill_9_mid_load_loses_nothing_acknowledged(live_service: ServiceProcess, system_db: Engine) -> None:
    claims = [scenario.ClaimFactory(seed=300, prefix="CRASH").claim(n) for n in range(CLAIMS)]
    answered: dict[str, httpx.Response] = {}
    unanswered: list[dict[str, Any]] = []
    lock = threading.Lock()
    killed_at: list[float] = []

    def submit(client: httpx.Client, claim: dict[str, Any]) -> None:
        try:
            response = client.post("/v1/claims", json=claim)
        except httpx.TransportError:  # cut off by the kill, or sent after it
            with lock:
                unanswered.append(claim)
            return
        with lock:
            answered[claim["claim_id"]] = response
            if len(answered) == KILL_AFTER:
                killed_at.append(time.monotonic())
                live_service.kill()  # the whole process group, SIGKILL, while others are in flight

    started = time.monotonic()
    limits = httpx.Limits(max_connections=CLIENTS)
    with live_service.client(FULL_KEY, limits=limits) as client, ThreadPoolExecutor(CLIENTS) as pool:
        list(pool.map(lambda c: submit(client, c), claims, timeout=TIME_LIMIT))
    assert killed_at, "the load finished before the kill"
    statuses = Counter(r.status_code for r in answered.values())
    assert statuses == {201: len(answered)}, statuses
    assert unanswered, "no request was cut off by the kill"

    restart_started = time.monotonic()
    live_service.start()
    restart_seconds = time.monotonic() - restart_started

    # Every acknowledged claim is there, unchanged.
    with live_service.client(READ_KEY) as reader:
        stored = scenario.fetch_eobs(reader, list(answered))
    lost = [cid for cid, r in stored.items() if r.status_code != 200 or r.content != answered[cid].content]
    assert not lost, f"acknowledged claims missing or changed after the crash: {lost}"
    stored_before_retry = len(_stored_claim_ids(system_db))
    # Committed but unacknowledged claims may exist; nothing else may.
    assert len(answered) <= stored_before_retry <= len(answered) + CLIENTS
    _check_books(live_service, system_db)

    # Retrying what went unanswered completes the set: 201 if it never committed, 200 if it did.
    with live_service.client(FULL_KEY) as client, ThreadPoolExecutor(CLIENTS) as pool:
        retried = list(pool.map(lambda c: client.post("/v1/claims", json=c), unanswered, timeout=TIME_LIMIT))
    retry_statuses = Counter(r.status_code for r in retried)
    assert set(retry_statuses) <= {200, 201}, retry_statuses
    assert retry_statuses[200] == stored_before_retry - len(answered)
    with live_service.client(READ_KEY) as reader:
        for claim, response in zip(unanswered, retried, strict=True):
            assert reader.get(f"/v1/claims/{claim['claim_id']}").content == response.content

    assert _stored_claim_ids(system_db) == sorted(c["claim_id"] for c in claims)
    eobs = _check_books(live_service, system_db)
    assert len(eobs) == CLAIMS

    FIGURES["crash"] = {
        "claims": CLAIMS,
        "clients": CLIENTS,
        "kills": 1,
        "acknowledged_before_kill": len(answered),
        "cut_off": len(unanswered),
        "committed_unacknowledged": retry_statuses[200],
        "restart_s": round(restart_seconds, 1),
        "seconds": round(time.monotonic() - started, 1),
    }
