"""The real server's log at INFO: one JSON line per request carrying its request id, and no
protected health information (member ids, diagnosis codes, amounts) anywhere in it, including
on the error paths that echo the request (409, 422, 404).
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from tests import factories as f
from tests.system.conftest import FULL_KEY
from tests.system.harness import FIGURES, ServiceProcess

pytestmark = pytest.mark.slow

MEMBER = "PHI-MBR-7Q3Z"
DIAGNOSIS = "S72.001A"
AMOUNT = "4321.87"
CLAIM = "LOGCLM-5521"
PHI = (MEMBER, DIAGNOSIS, "S72001A", AMOUNT, "432187")


def _claim(**overrides: Any) -> dict[str, Any]:
    body = {
        "claim_id": CLAIM,
        "member_id": MEMBER,
        "billing_provider_npi": f.WORKED_NPI,
        "place_of_service": "11",
        "received_date": "2026-03-05",
        "diagnosis_codes": [DIAGNOSIS],
        "lines": [
            {
                "line_number": 1,
                "procedure_code": "29881",
                "units": 1,
                "billed_amount": AMOUNT,
                "service_date": "2026-03-01",
            },
        ],
    }
    return {**body, **overrides}


def _parse(lines: list[str]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in lines if line.startswith("{")]


def test_request_logs_are_json_with_request_ids_and_no_phi(live_service: ServiceProcess) -> None:
    before = len(live_service.log_text().splitlines())
    sent: list[tuple[str, int]] = []  # (request id, status)
    with live_service.client(FULL_KEY) as client:

        def call(method: str, path: str, n: int, **kwargs: Any) -> None:
            rid = f"sys-log-{n}"
            response = client.request(method, path, headers={"X-Request-ID": rid}, **kwargs)
            assert response.headers["x-request-id"] == rid
            sent.append((rid, response.status_code))

        call("POST", "/v1/members", 1, json=f.member_body(member_id=MEMBER, coverage_from="2025-01-01"))
        call("POST", "/v1/claims", 2, json=_claim())
        call("POST", "/v1/claims", 3, json=_claim())  # idempotent replay
        call("POST", "/v1/claims", 4, json=_claim(place_of_service="22"))  # 409
        invalid = _claim(claim_id="LOGCLM-5522", diagnosis_codes=[DIAGNOSIS, "!" + MEMBER])
        call("POST", "/v1/claims", 5, json=invalid)  # 422, the bad value holds the member id
        call("POST", "/v1/estimates", 6, json=_claim(claim_id=None))
        call("GET", f"/v1/claims/{CLAIM}", 7)
        call("GET", f"/v1/members/{MEMBER}/accumulators", 8, params={"plan_year": 2026})
        call("GET", f"/v1/members/{MEMBER}-NOPE/accumulators", 9)
        call("POST", f"/v1/claims/{CLAIM}/void", 10)
        call("GET", f"/v1/authorizations/{MEMBER}", 11)
        client.get(f"/v1/members/{MEMBER}")  # without a request id: the server assigns one
    assert [status for _, status in sent] == [201, 201, 200, 409, 422, 200, 200, 200, 404, 200, 404]
    sent_ids = {rid for rid, _ in sent}

    deadline = time.monotonic() + 15  # workers write their lines as they answer; allow for the flush
    while time.monotonic() < deadline:
        new = live_service.log_text().splitlines()[before:]
        entries = _parse(new)
        access = [e for e in entries if e.get("logger") == "service.access"]
        # A worker logs a request after answering it, so the last lines of the fixture's own set-up
        # requests may land after `before`: count ours, and the one without a request id.
        ours = [e for e in access if e["request_id"] in sent_ids]
        assigned = [
            e
            for e in access
            if e["request_id"] not in sent_ids
            and e["method"] == "GET"
            and e["route"] == "/v1/members/{member_id}"
        ]
        if len(ours) >= len(sent) and assigned:
            break
        time.sleep(0.1)

    assert new and all(line.startswith("{") for line in new), [ln for ln in new if not ln.startswith("{")]
    # The whole log, startup and the supervisor included, is JSON lines but for the CLI's own note.
    plain = [ln for ln in live_service.log_text().splitlines() if not ln.startswith("{")]
    assert plain == ["database migrated to head"], plain
    assert not any("\x1b" in line or "\\u001b" in line for line in new), "terminal colour codes"
    leaked = [line for line in new if any(value in line for value in PHI)]
    assert not leaked, f"PHI in the log: {leaked}"
    assert all(e.get("request_id") for e in entries), [e for e in entries if not e.get("request_id")]
    assert all(e["level"] in ("info", "warning", "error") for e in entries)
    logged = {(e["request_id"], e["status"]): e for e in access}
    for rid, status in sent:
        entry = logged.get((rid, status))
        assert entry is not None, f"no access line for {rid} ({status})"
        assert "{" in entry["route"] or entry["route"] in ("/v1/claims", "/v1/estimates", "/v1/members")
    assert len(ours) == len(sent), ours
    assert [e["status"] for e in assigned] == [200], assigned
    FIGURES["logs"] = {"requests": len(sent) + 1, "lines": len(new), "phi_leaks": 0}
