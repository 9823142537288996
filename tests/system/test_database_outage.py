"""A database that goes away or stalls does not take the service down with it.

The service reaches PostgreSQL through a TCP proxy the test controls. Cutting the proxy is the
database going away (connections reset, new ones refused); an ACCESS EXCLUSIVE lock taken by
another connection is the database stalling. Either way /healthz keeps answering, requests that
need the database fail fast with 503 problem+json instead of hanging, /readyz says 503 while the
database is unreachable, and everything recovers by itself.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, make_url, text

from tests import factories as f
from tests.system.conftest import FULL_KEY, ServiceFactory, wipe
from tests.system.harness import FIGURES, LOOPBACK, ServiceProcess, TcpProxy

pytestmark = pytest.mark.slow

STATEMENT_TIMEOUT_MS = 1500
POOL_TIMEOUT_S = 2
FAIL_FAST_S = 4.0  # a request needing an unreachable or stalled database answers within this


@pytest.fixture(scope="module")
def proxy(system_database_url: str) -> Iterator[TcpProxy]:
    url = make_url(system_database_url)
    proxy = TcpProxy(url.host or LOOPBACK, url.port or 5432)
    proxy.restore()
    yield proxy
    proxy.cut()


@pytest.fixture(scope="module")
def service(
    system_database_url: str, system_db: Engine, proxy: TcpProxy, service_factory: ServiceFactory
) -> ServiceProcess:
    wipe(system_db)
    via_proxy = make_url(system_database_url).set(host=LOOPBACK, port=proxy.port)
    service = service_factory(
        database_url=via_proxy.render_as_string(hide_password=False),
        env={
            "CLAIMS_DB_STATEMENT_TIMEOUT_MS": str(STATEMENT_TIMEOUT_MS),
            "CLAIMS_DB_POOL_TIMEOUT_SECONDS": str(POOL_TIMEOUT_S),
        },
    )
    service.start()
    with service.client(FULL_KEY) as admin:
        f.load_worked_example(admin)
    return service


def _claim(claim_id: str) -> dict[str, Any]:
    return {
        "claim_id": claim_id,
        "member_id": f.WORKED_MEMBER,
        "billing_provider_npi": f.WORKED_NPI,
        "place_of_service": "11",
        "received_date": "2026-03-05",
        "diagnosis_codes": ["J06.9"],
        "lines": [
            {
                "line_number": 1,
                "procedure_code": "99213",
                "units": 1,
                "billed_amount": "200.00",
                "service_date": "2026-03-01",
            },
        ],
    }


def _timed(client: httpx.Client, method: str, path: str, **kwargs: Any) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = client.request(method, path, **kwargs)
    return response, time.monotonic() - started


def _unavailable(response: httpx.Response, seconds: float) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == 503
    assert seconds < FAIL_FAST_S, f"took {seconds:.1f}s to fail"


def _wait_ready(client: httpx.Client, within: float) -> float:
    started = time.monotonic()
    while time.monotonic() - started < within:
        if client.get("/readyz").status_code == 200:
            return time.monotonic() - started
        time.sleep(0.2)
    raise AssertionError(f"/readyz did not recover within {within}s")


def test_database_going_away_gives_fast_503s_and_recovers(service: ServiceProcess, proxy: TcpProxy) -> None:
    with service.client(FULL_KEY, timeout=20) as client:
        assert client.post("/v1/claims", json=_claim("OUT-1")).status_code == 201

        proxy.cut()
        try:
            healthz, healthz_s = _timed(client, "GET", "/healthz")
            assert healthz.status_code == 200 and healthz_s < 1.0
            readyz, readyz_s = _timed(client, "GET", "/readyz")
            assert readyz.status_code == 503 and readyz_s < FAIL_FAST_S
            worst = 0.0
            for _ in range(3):  # both workers, pooled connections and fresh ones
                posted, posted_s = _timed(client, "POST", "/v1/claims", json=_claim("OUT-2"))
                _unavailable(posted, posted_s)
                read, read_s = _timed(client, "GET", "/v1/claims/OUT-1")
                _unavailable(read, read_s)
                worst = max(worst, posted_s, read_s)
            assert posted.headers["retry-after"]
        finally:
            proxy.restore()

        recovered_s = _wait_ready(client, within=30)
        assert client.get("/v1/claims/OUT-1").status_code == 200
        # The claim refused with 503 was never stored: its retry is new.
        assert client.post("/v1/claims", json=_claim("OUT-2")).status_code == 201
    FIGURES["database_down"] = {
        "readyz_503_s": round(readyz_s, 2),
        "worst_503_s": round(worst, 2),
        "recovered_s": round(recovered_s, 1),
    }


def test_stalled_database_gives_fast_503s_and_recovers(service: ServiceProcess, system_db: Engine) -> None:
    with service.client(FULL_KEY, timeout=20) as client, system_db.connect() as blocker:
        assert client.post("/v1/claims", json=_claim("STALL-1")).status_code == 201
        blocker.execute(text("LOCK TABLE claims IN ACCESS EXCLUSIVE MODE"))  # held until rollback
        try:
            assert client.get("/healthz").status_code == 200
            posted, posted_s = _timed(client, "POST", "/v1/claims", json=_claim("STALL-2"))
            _unavailable(posted, posted_s)
            read, read_s = _timed(client, "GET", "/v1/claims/STALL-1")
            _unavailable(read, read_s)
            assert posted_s >= STATEMENT_TIMEOUT_MS / 1000 * 0.9  # it waited for the lock, then gave up
        finally:
            blocker.rollback()
        assert client.get("/v1/claims/STALL-1").status_code == 200
        assert client.post("/v1/claims", json=_claim("STALL-2")).status_code == 201
    FIGURES["database_stalled"] = {
        "statement_timeout_ms": STATEMENT_TIMEOUT_MS,
        "claim_503_s": round(posted_s, 2),
        "read_503_s": round(read_s, 2),
    }


STORM = 120  # more requests than both workers have threads (40 each) and connections (20 each)


def test_a_storm_against_a_stalled_database_is_shed_while_healthz_answers(
    service: ServiceProcess, system_db: Engine
) -> None:
    limits = httpx.Limits(max_connections=STORM)
    with (
        service.client(FULL_KEY, timeout=30, limits=limits) as client,
        service.client(FULL_KEY, timeout=30) as prober,
        system_db.connect() as blocker,
        ThreadPoolExecutor(STORM) as pool,
    ):
        blocker.execute(text("LOCK TABLE claims IN ACCESS EXCLUSIVE MODE"))
        try:
            storm = [
                pool.submit(_timed, client, "POST", "/v1/claims", json=_claim(f"STORM-{n}"))
                for n in range(STORM)
            ]
            time.sleep(0.5)  # the storm is in: threads and connections are taken
            probes = [_timed(prober, "GET", "/healthz") for _ in range(5)]
            outcomes = [future.result(timeout=60) for future in storm]
        finally:
            blocker.rollback()
    statuses = Counter(response.status_code for response, _ in outcomes)
    assert statuses == {503: STORM}, statuses
    assert all(r.headers["content-type"] == "application/problem+json" for r, _ in outcomes)
    slowest = max(seconds for _, seconds in outcomes)
    assert slowest < 15, f"the slowest refusal took {slowest:.1f}s"
    healthz_s = max(seconds for _, seconds in probes)
    assert all(r.status_code == 200 for r, _ in probes)
    assert healthz_s < 1.0, f"/healthz took {healthz_s:.2f}s while the storm held the threads"
    FIGURES["database_stalled_storm"] = {
        "requests": STORM,
        "all_503": True,
        "slowest_503_s": round(slowest, 1),
        "healthz_worst_s": round(healthz_s, 2),
    }
