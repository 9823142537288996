"""Reference data for tests, created THROUGH THE API (so it is valid by construction).

Builders POST one resource with sensible defaults, assert 201 and return the response JSON:
`network`, `provider`, `fee_schedule`, `contract`, `plan`, `member`, `authorization`. Pass
keyword arguments to override any field of the body. The `*_body` functions return bodies
without posting, for tests that post something invalid.

`load_worked_example(admin)` creates the data of adjudication.md's worked example:

- network ACME-PPO; provider 1234567893 (Dr. Ada Example)
- fee schedule ACME-2026 (contracted rates, per unit):
  99213 110.00 | 99214 160.00 | 70551 400.00, 70551-26 90.00 (professional component),
  70551-TC 310.00 (technical component) | 27447 1500.00
- fee schedule MEDICARE-2026, the out-of-network reference schedule:
  99213 90.00 | 99214 130.00 | 70551 250.00 | 27447 1200.00
- contract ACME-PPO / 1234567893 / ACME-2026, effective 2026-01-01, open-ended, no timely
  filing limit, no unlisted-code percentage
- plan GOLD-PPO exactly as in api.md (150% of MEDICARE-2026 out of network, $25 office visit
  copay for 99202-99215, prior authorization for 70551-70553 and 27447)
- member M-100 on GOLD-PPO, covered from 2026-01-01, open-ended

So a claim for 99213 billed 200.00 on 2026-03-01 by 1234567893 for M-100 gives the worked EOB.

Also: `make_npi(n)` (the n-th valid test NPI), `problem(response, status, loc)` (asserts a
problem+json error, optionally naming a field) and `row_counts(engine)` (compare before and after
a failed request to show nothing was stored).
"""

from __future__ import annotations

import copy
from typing import Any

from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import Engine, func, select, text

from service.db.base import Base
from service.domain.codes import npi_is_valid

Json = dict[str, Any]

WORKED_NETWORK = "ACME-PPO"
WORKED_NPI = "1234567893"
WORKED_FEE_SCHEDULE = "ACME-2026"
REFERENCE_FEE_SCHEDULE = "MEDICARE-2026"
WORKED_PLAN = "GOLD-PPO"
WORKED_MEMBER = "M-100"

ACME_2026_RATES: list[Json] = [
    {"procedure_code": "99213", "allowed_amount": "110.00"},
    {"procedure_code": "99214", "allowed_amount": "160.00"},
    {"procedure_code": "70551", "allowed_amount": "400.00"},
    {"procedure_code": "70551", "modifier": "26", "allowed_amount": "90.00"},
    {"procedure_code": "70551", "modifier": "TC", "allowed_amount": "310.00"},
    {"procedure_code": "27447", "allowed_amount": "1500.00"},
]
MEDICARE_2026_RATES: list[Json] = [
    {"procedure_code": "99213", "allowed_amount": "90.00"},
    {"procedure_code": "99214", "allowed_amount": "130.00"},
    {"procedure_code": "70551", "allowed_amount": "250.00"},
    {"procedure_code": "27447", "allowed_amount": "1200.00"},
]

GOLD_PPO_PLAN: Json = {
    "code": "GOLD-PPO",
    "name": "Gold PPO",
    "network_code": "ACME-PPO",
    "in_network": {"deductible": "500.00", "out_of_pocket_max": "3000.00", "coinsurance_rate": "0.20"},
    "out_of_network": {
        "deductible": "1000.00",
        "out_of_pocket_max": "6000.00",
        "coinsurance_rate": "0.40",
        "allowed_basis": {
            "method": "percent_of_fee_schedule",
            "fee_schedule_code": "MEDICARE-2026",
            "percent": "1.50",
        },
    },
    "copay_categories": [
        {
            "name": "office_visit",
            "procedure_codes": ["99202-99215"],
            "in_network_copay": "25.00",
            "out_of_network_copay": None,
            "deductible_applies": False,
            "coinsurance_rate": "0.00",
        }
    ],
    "prior_authorization_codes": ["70551-70553", "27447"],
}


def make_npi(n: int) -> str:
    """The n-th valid NPI (n >= 0), deterministic and distinct for distinct n."""
    stem = f"{100_000_000 + n:09d}"
    if len(stem) != 9:
        raise ValueError(f"n={n} is too large for a ten-digit NPI")
    return next(stem + d for d in "0123456789" if npi_is_valid(stem + d))


def created(client: TestClient, path: str, body: Json) -> Json:
    """POST the body, assert 201 (showing the problem on failure) and return the response JSON."""
    response = client.post(path, json=body)
    assert response.status_code == 201, f"POST {path}: {response.status_code} {response.text}"
    result: Json = response.json()
    return result


def problem(response: Response, status: int, loc: list[str | int] | None = None) -> Json:
    """Assert an RFC 9457 problem+json with this status (and an error at exactly `loc`)."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: Json = response.json()
    assert body["status"] == status and body["title"] and body["detail"] and body["type"]
    if loc is not None:
        locs = [error["loc"] for error in body.get("errors", [])]
        assert loc in locs, f"no error at {loc}: {body}"
    return body


def row_counts(engine: Engine) -> dict[str, int]:
    """Rows per table: compare before and after a failed request to prove nothing was stored."""
    with engine.connect() as conn:
        return {
            table.name: conn.execute(select(func.count()).select_from(table)).scalar_one()
            for table in Base.metadata.sorted_tables
        }


MEMBER_COPIES_MISMATCHED = text(
    """
    SELECT (SELECT count(*) FROM claim_lines l JOIN claims c ON c.id = l.claim_id
            WHERE l.member_id IS DISTINCT FROM c.member_id)
         + (SELECT count(*) FROM accumulator_postings p JOIN claims c ON c.id = p.claim_id
            WHERE p.member_id IS DISTINCT FROM c.member_id)
    """
)


def member_copies_mismatched(engine: Engine) -> int:
    """Claim lines and postings whose copy of the member id is not their claim's: the copies
    have no foreign key of their own (migration 0004), so the tests check them."""
    with engine.connect() as conn:
        return int(conn.execute(MEMBER_COPIES_MISMATCHED).scalar_one())


def network_body(**overrides: Any) -> Json:
    return {"code": WORKED_NETWORK, "name": "Acme PPO network", **overrides}


def provider_body(**overrides: Any) -> Json:
    return {"npi": WORKED_NPI, "name": "Dr. Ada Example", "tin": "123456789", **overrides}


def fee_schedule_body(**overrides: Any) -> Json:
    body = {"code": WORKED_FEE_SCHEDULE, "name": "Acme PPO 2026", "rates": ACME_2026_RATES}
    return copy.deepcopy({**body, **overrides})


def contract_body(**overrides: Any) -> Json:
    body = {
        "network_code": WORKED_NETWORK,
        "provider_npi": WORKED_NPI,
        "fee_schedule_code": WORKED_FEE_SCHEDULE,
        "effective_from": "2026-01-01",
        "effective_to": None,
    }
    return {**body, **overrides}


def plan_body(**overrides: Any) -> Json:
    return copy.deepcopy({**GOLD_PPO_PLAN, **overrides})


def member_body(**overrides: Any) -> Json:
    body = {
        "member_id": WORKED_MEMBER,
        "plan_code": WORKED_PLAN,
        "coverage_from": "2026-01-01",
        "coverage_to": None,
    }
    return {**body, **overrides}


def authorization_body(**overrides: Any) -> Json:
    body = {
        "authorization_number": "PA-0001",
        "member_id": WORKED_MEMBER,
        "procedure_codes": ["70551"],
        "units": 1,
        "valid_from": "2026-01-01",
        "valid_to": "2026-12-31",
        "provider_npi": None,
        "status": "approved",
    }
    return {**body, **overrides}


def network(client: TestClient, **overrides: Any) -> Json:
    return created(client, "/v1/networks", network_body(**overrides))


def provider(client: TestClient, **overrides: Any) -> Json:
    return created(client, "/v1/providers", provider_body(**overrides))


def fee_schedule(client: TestClient, **overrides: Any) -> Json:
    return created(client, "/v1/fee-schedules", fee_schedule_body(**overrides))


def reference_fee_schedule(client: TestClient, **overrides: Any) -> Json:
    """MEDICARE-2026, the out-of-network reference schedule GOLD-PPO prices against."""
    body = {"code": REFERENCE_FEE_SCHEDULE, "name": "Medicare PFS 2026", "rates": MEDICARE_2026_RATES}
    return created(client, "/v1/fee-schedules", copy.deepcopy({**body, **overrides}))


def contract(client: TestClient, **overrides: Any) -> Json:
    return created(client, "/v1/contracts", contract_body(**overrides))


def plan(client: TestClient, **overrides: Any) -> Json:
    """GOLD-PPO by default: its network and (for its out-of-network basis) MEDICARE-2026 must exist."""
    return created(client, "/v1/plans", plan_body(**overrides))


def member(client: TestClient, **overrides: Any) -> Json:
    return created(client, "/v1/members", member_body(**overrides))


def authorization(client: TestClient, **overrides: Any) -> Json:
    return created(client, "/v1/authorizations", authorization_body(**overrides))


def load_worked_example(admin: TestClient) -> Json:
    """Create the worked example's reference data (see the module docstring) through the API.

    `admin` must send the admin key (the `admin` fixture). Returns each created resource's JSON.
    """
    return {
        "network": network(admin),
        "provider": provider(admin),
        "fee_schedule": fee_schedule(admin),
        "reference_fee_schedule": reference_fee_schedule(admin),
        "contract": contract(admin),
        "plan": plan(admin),
        "member": member(admin),
    }
