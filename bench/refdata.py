"""The benchmark's synthetic reference data, and loading it through the service's HTTP API.

Deterministic for a seed. Sizes (issue 7): 1,000 providers, 200 fee schedules of 2,000 codes,
10,000 members, prior-authorization rules in every plan and authorizations for a third of the
members; plus two fee schedules of 1,000,000 rates each (`big_rates`) for the cost-growth check.

- providers 0-49 are contracted on the two big schedules, 50-899 on the 200 small ones (about
  four providers per schedule), 900-999 have no contract (out of network);
- plans: a PPO (150% of a Medicare-like reference schedule out of network, $25 office visit
  copay), a high-deductible plan (70% of billed out of network) and an HMO (no out-of-network
  benefit); all three require prior authorization for imaging (70010-76499) and 27447;
- every member is covered from 2025-01-01; one in fifty loses coverage on 2026-03-31.

Rates go through the CSV endpoint (PUT /v1/fee-schedules/{code}/rates); everything else is
POSTed in parallel, which is how an administrator's bulk tooling would load it.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import aiohttp

from service.domain.codes import npi_is_valid

NETWORK = "BENCH-NET"
REFERENCE_SCHEDULE = "BENCH-MEDICARE"
SMALL_SCHEDULES = 200
CODES_PER_SCHEDULE = 2_000
BIG_SCHEDULES = 2
PROVIDERS = 1_000
BIG_PROVIDERS = range(0, 50)
SMALL_PROVIDERS = range(50, 900)
OUT_OF_NETWORK_PROVIDERS = range(900, 1_000)
MEMBERS = 10_000
OFFICE_VISITS = [str(c) for c in range(99202, 99216)]
IMAGING = ("70010", "76499")
PRIOR_AUTHORIZATION_CODES = [f"{IMAGING[0]}-{IMAGING[1]}", "27447"]
BIG_MODIFIERS = ["", "26", "TC", "25", "59", "76", "91", "GT", "LT", "RT"]
CENT = Decimal("0.01")

Json = dict[str, Any]


def npi(n: int) -> str:
    """The n-th valid NPI: a fixed stem and the Luhn check digit."""
    stem = f"{300_000_000 + n:09d}"
    return next(stem + d for d in "0123456789" if npi_is_valid(stem + d))


def small_schedule(i: int) -> str:
    return f"FS-{i:03d}"


def big_schedule(i: int) -> str:
    return f"FS-BIG-{i}"


def is_imaging(code: str) -> bool:
    return IMAGING[0] <= code <= IMAGING[1]


@dataclass(frozen=True)
class Dataset:
    """What the claim generator needs to know about the loaded reference data."""

    codes: list[str]
    base_price: dict[str, Decimal]
    small_providers: list[str]
    big_providers: list[str]
    out_of_network_providers: list[str]
    members: list[str]
    # member id -> the authorization number of its approved imaging authorization
    authorizations: dict[str, str] = field(default_factory=dict)
    big_rates: int = 1_000_000


def build_dataset(seed: int = 7, big_rates: int = 1_000_000) -> Dataset:
    rng = random.Random(seed)
    others = sorted(set(range(10021, 99200)) - {int(c) for c in OFFICE_VISITS})
    codes = sorted(OFFICE_VISITS + [f"{c:05d}" for c in rng.sample(others, CODES_PER_SCHEDULE - 14)])
    # Log-uniform list prices, $15 to $3,000 per unit, like a real chargemaster spread.
    base_price = {c: Decimal(str(round(15 * 200 ** rng.random(), 2))).quantize(CENT) for c in codes}
    members = [f"BM-{i:05d}" for i in range(MEMBERS)]
    authorizations = {m: f"PA-{m}" for i, m in enumerate(members) if i % 3 == 0 and i % 30 != 0}
    return Dataset(
        codes=codes,
        base_price=base_price,
        small_providers=[npi(i) for i in SMALL_PROVIDERS],
        big_providers=[npi(i) for i in BIG_PROVIDERS],
        out_of_network_providers=[npi(i) for i in OUT_OF_NETWORK_PROVIDERS],
        members=members,
        authorizations=authorizations,
        big_rates=big_rates,
    )


# ---------------------------------------------------------------- rates as CSV


def _csv(rows: Iterable[tuple[str, str, Decimal]]) -> bytes:
    lines = ["procedure_code,modifier,allowed_amount"]
    lines.extend(f"{code},{modifier},{amount}" for code, modifier, amount in rows)
    return ("\n".join(lines) + "\n").encode()


def small_schedule_csv(ds: Dataset, i: int) -> bytes:
    factor = Decimal(80 + (i * 37) % 81) / 100  # 0.80 .. 1.60 of the list price, per schedule
    return _csv((c, "", (ds.base_price[c] * factor).quantize(CENT)) for c in ds.codes)


def reference_schedule_csv(ds: Dataset) -> bytes:
    return _csv((c, "", (ds.base_price[c] * Decimal("0.55")).quantize(CENT)) for c in ds.codes)


def big_schedule_rows(ds: Dataset, i: int) -> Iterator[tuple[str, str, Decimal]]:
    """The 2,000 claim codes at contracted prices, then filler codes and modifiers up to big_rates."""
    factor = Decimal("1.10") + Decimal(i) / 10
    priced = set(ds.codes)
    yield from ((c, "", (ds.base_price[c] * factor).quantize(CENT)) for c in ds.codes)
    left = ds.big_rates - len(priced)
    for n in range(100_000):
        code = f"{n:05d}"
        for modifier in BIG_MODIFIERS:
            if left <= 0:
                return
            if modifier == "" and code in priced:
                continue
            yield code, modifier, Decimal(10 + n % 4_000) + Decimal(len(modifier)) / 4
            left -= 1


# ---------------------------------------------------------------- request bodies


def plans() -> list[Json]:
    office_visit = {
        "name": "office_visit",
        "procedure_codes": ["99202-99215"],
        "in_network_copay": "25.00",
        "out_of_network_copay": None,
        "deductible_applies": False,
        "coinsurance_rate": "0.00",
    }
    return [
        {
            "code": "BENCH-PPO",
            "name": "Bench PPO",
            "network_code": NETWORK,
            "in_network": {
                "deductible": "500.00",
                "out_of_pocket_max": "3000.00",
                "coinsurance_rate": "0.20",
            },
            "out_of_network": {
                "deductible": "1000.00",
                "out_of_pocket_max": "6000.00",
                "coinsurance_rate": "0.40",
                "allowed_basis": {
                    "method": "percent_of_fee_schedule",
                    "fee_schedule_code": REFERENCE_SCHEDULE,
                    "percent": "1.50",
                },
            },
            "copay_categories": [office_visit],
            "prior_authorization_codes": PRIOR_AUTHORIZATION_CODES,
        },
        {
            "code": "BENCH-HDHP",
            "name": "Bench high-deductible plan",
            "network_code": NETWORK,
            "in_network": {
                "deductible": "3000.00",
                "out_of_pocket_max": "7000.00",
                "coinsurance_rate": "0.10",
            },
            "out_of_network": {
                "deductible": "6000.00",
                "out_of_pocket_max": "14000.00",
                "coinsurance_rate": "0.30",
                "allowed_basis": {"method": "percent_of_billed", "percent": "0.70"},
            },
            "copay_categories": [],
            "prior_authorization_codes": PRIOR_AUTHORIZATION_CODES,
        },
        {
            "code": "BENCH-HMO",
            "name": "Bench HMO",
            "network_code": NETWORK,
            "in_network": {
                "deductible": "250.00",
                "out_of_pocket_max": "4000.00",
                "coinsurance_rate": "0.20",
            },
            "out_of_network": None,
            "copay_categories": [{**office_visit, "in_network_copay": "20.00"}],
            "prior_authorization_codes": PRIOR_AUTHORIZATION_CODES,
        },
    ]


def plan_of(member_index: int) -> str:
    slot = member_index % 20
    return "BENCH-PPO" if slot < 12 else "BENCH-HDHP" if slot < 17 else "BENCH-HMO"


def member_bodies(ds: Dataset) -> Iterator[Json]:
    for i, member_id in enumerate(ds.members):
        yield {
            "member_id": member_id,
            "plan_code": plan_of(i),
            "coverage_from": "2025-01-01",
            "coverage_to": "2026-03-31" if i % 50 == 49 else None,
        }


def authorization_bodies(ds: Dataset) -> Iterator[Json]:
    for i, member_id in enumerate(ds.members):
        if i % 3:
            continue
        approved = member_id in ds.authorizations
        yield {
            "authorization_number": f"PA-{member_id}",
            "member_id": member_id,
            "procedure_codes": [f"{IMAGING[0]}-{IMAGING[1]}"],
            "units": 60,
            "valid_from": "2026-01-01",
            "valid_to": "2026-12-31",
            "provider_npi": None,
            "status": "approved" if approved else "denied",
        }


def contract_bodies() -> Iterator[Json]:
    for i in [*BIG_PROVIDERS, *SMALL_PROVIDERS]:
        schedule = (
            big_schedule(i % BIG_SCHEDULES) if i in BIG_PROVIDERS else small_schedule(i % SMALL_SCHEDULES)
        )
        yield {
            "network_code": NETWORK,
            "provider_npi": npi(i),
            "fee_schedule_code": schedule,
            "effective_from": "2025-01-01",
            "effective_to": None,
            "timely_filing_days": 365 if i % 10 == 0 else None,
            "unlisted_percent_of_billed": "0.60" if i % 7 == 0 else None,
        }


# ---------------------------------------------------------------- loading through the API


class Api:
    """A small aiohttp client for the admin endpoints; every call must succeed."""

    def __init__(self, session: aiohttp.ClientSession, base_url: str) -> None:
        self.session = session
        self.base_url = base_url

    async def _check(self, response: aiohttp.ClientResponse, expected: int, what: str) -> Json:
        body = await response.text()
        if response.status != expected:
            raise RuntimeError(f"{what}: HTTP {response.status} {body[:500]}")
        result: Json = await response.json(content_type=None)
        return result

    async def post(self, path: str, body: Json) -> Json:
        async with self.session.post(self.base_url + path, json=body) as response:
            return await self._check(response, 201, f"POST {path}")

    async def put_csv(self, path: str, data: bytes) -> Json:
        headers = {"Content-Type": "text/csv"}
        async with self.session.put(self.base_url + path, data=data, headers=headers) as response:
            return await self._check(response, 200, f"PUT {path}")

    async def post_all(self, path: str, bodies: Iterable[Json], concurrency: int) -> int:
        queue = iter(bodies)
        count = 0

        async def worker() -> None:
            nonlocal count
            for body in queue:  # one shared iterator: each body is taken once
                await self.post(path, body)
                count += 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return count

    async def schedule(self, code: str, csv: bytes) -> None:
        await self.post("/v1/fee-schedules", {"code": code, "name": f"Bench {code}", "rates": []})
        result = await self.put_csv(f"/v1/fee-schedules/{code}/rates", csv)
        expected = csv.count(b"\n") - 1
        if result.get("rate_count") != expected:
            raise RuntimeError(f"{code}: {result} after uploading {expected} rates")


async def _gather_limited(jobs: list[Any], concurrency: int) -> None:
    semaphore = asyncio.Semaphore(concurrency)

    async def run(job: Any) -> None:
        async with semaphore:
            await job

    await asyncio.gather(*(run(job) for job in jobs))


async def load(base_url: str, api_key: str, ds: Dataset, concurrency: int, say: Any) -> None:
    """Create everything in dependency order; `say` reports progress and timings."""
    headers = {"Authorization": f"Bearer {api_key}"}
    timeout = aiohttp.ClientTimeout(total=600)
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(headers=headers, timeout=timeout, connector=connector) as session:
        api = Api(session, base_url)
        started = time.perf_counter()

        def step(what: str) -> None:
            say(f"  {what} ({time.perf_counter() - started:.0f}s)")

        await api.post("/v1/networks", {"code": NETWORK, "name": "Benchmark network"})
        providers = ({"npi": npi(i), "name": f"Bench provider {i}"} for i in range(PROVIDERS))
        step(f"{await api.post_all('/v1/providers', providers, concurrency)} providers")
        await api.schedule(REFERENCE_SCHEDULE, reference_schedule_csv(ds))
        small = [api.schedule(small_schedule(i), small_schedule_csv(ds, i)) for i in range(SMALL_SCHEDULES)]
        await _gather_limited(small, 4)
        step(f"{SMALL_SCHEDULES} fee schedules of {CODES_PER_SCHEDULE} rates (CSV)")
        for i in range(BIG_SCHEDULES):
            await api.schedule(big_schedule(i), _csv(big_schedule_rows(ds, i)))
        step(f"{BIG_SCHEDULES} fee schedules of {ds.big_rates} rates (CSV)")
        step(f"{await api.post_all('/v1/contracts', contract_bodies(), concurrency)} contracts")
        for plan in plans():
            await api.post("/v1/plans", plan)
        step(f"{await api.post_all('/v1/members', member_bodies(ds), concurrency)} members")
        count = await api.post_all("/v1/authorizations", authorization_bodies(ds), concurrency)
        step(f"{count} authorizations")
