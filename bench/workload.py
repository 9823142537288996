"""Claims for the benchmark, written as files of one JSON body per line.

Both load generators (wrk's Lua script and load.py) replay these files, so every phase and the
baseline send exactly the same kind of claim. "claim_id" is always the first key: on the rare
wrap-around of a file, the Lua script rewrites it so that no claim is ever a replay.

The mix (per claim): 1 to 5 lines on one service date in the first half of 2026; a random
member; 90% in-network providers (small and big fee schedules in proportion), 10% out of
network; 3% emergencies and 4% naming an in-network facility (No Surprises Act paths, which load
the whole network's contracts for the QPA); 40% of lines are office visits, the rest any of the
2,000 priced codes, so about one claim in eight has an imaging line that needs prior
authorization (its number is given seven times in ten when the member has one).
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from refdata import OFFICE_VISITS, Dataset, is_imaging

DIAGNOSES = ["J06.9", "I10", "E11.9", "M54.5", "Z00.00", "R51.9", "K21.9", "F41.1", "J45.909", "N39.0"]
FIRST_SERVICE_DAY = date(2026, 1, 2)
SERVICE_DAYS = 180
CENT = Decimal("0.01")

Json = dict[str, Any]


class ClaimMaker:
    def __init__(self, ds: Dataset, seed: int, prefix: str) -> None:
        self.ds = ds
        self.rng = random.Random(seed)
        self.prefix = prefix
        self.count = 0

    def _line(self, number: int, code: str, service_date: date, member_id: str) -> Json:
        rng = self.rng
        units = 1 if rng.random() < 0.9 else rng.randint(2, 3)
        billed = (self.ds.base_price[code] * Decimal(str(rng.uniform(1.2, 3.0))) * units).quantize(CENT)
        authorization = self.ds.authorizations.get(member_id) if is_imaging(code) else None
        return {
            "line_number": number,
            "procedure_code": code,
            "modifiers": [rng.choice(["25", "59"])] if rng.random() < 0.1 else [],
            "units": units,
            "billed_amount": str(billed),
            "service_date": service_date.isoformat(),
            "authorization_number": authorization if authorization and rng.random() < 0.7 else None,
        }

    def _code(self) -> str:
        return self.rng.choice(OFFICE_VISITS) if self.rng.random() < 0.4 else self.rng.choice(self.ds.codes)

    def claim(self, *, lines: int | None = None, provider: str | None = None) -> Json:
        """A random claim; `lines` and `provider` pin the line count and the billing provider."""
        rng = self.rng
        self.count += 1
        member_id = rng.choice(self.ds.members)
        service_date = FIRST_SERVICE_DAY + timedelta(days=rng.randrange(SERVICE_DAYS))
        n_lines = lines or rng.randint(1, 5)
        codes = rng.sample(self.ds.codes, n_lines) if n_lines > 5 else [self._code() for _ in range(n_lines)]
        roll = rng.random()
        emergency, facility = roll < 0.03, roll > 0.96
        return {
            "claim_id": f"{self.prefix}-{self.count:07d}",
            "member_id": member_id,
            "billing_provider_npi": provider or self._provider(),
            "facility_npi": rng.choice(self.ds.small_providers[:50]) if facility else None,
            "place_of_service": "23" if emergency else "22" if facility else "11",
            "emergency": emergency,
            "received_date": (service_date + timedelta(days=rng.randint(1, 20))).isoformat(),
            "diagnosis_codes": rng.sample(DIAGNOSES, rng.randint(1, 3)),
            "lines": [self._line(i + 1, code, service_date, member_id) for i, code in enumerate(codes)],
        }

    def _provider(self) -> str:
        if self.rng.random() < 0.1:
            return self.rng.choice(self.ds.out_of_network_providers)
        return self.rng.choice(self.ds.small_providers + self.ds.big_providers)


def write(path: Path, claims: Iterator[Json]) -> Path:
    with path.open("w") as out:
        for claim in claims:
            out.write(json.dumps(claim, separators=(",", ":")) + "\n")
    return path


def mixed(maker: ClaimMaker, count: int) -> Iterator[Json]:
    return (maker.claim() for _ in range(count))


def fixed_lines(maker: ClaimMaker, count: int, lines: int) -> Iterator[Json]:
    """In-network claims on small fee schedules with exactly `lines` lines."""
    small = maker.ds.small_providers
    return (maker.claim(lines=lines, provider=maker.rng.choice(small)) for _ in range(count))


def schedule_pairs(ds: Dataset, count: int, seed: int, prefix: str) -> tuple[Iterator[Json], Iterator[Json]]:
    """The same claims twice: billed by providers on 2,000-rate schedules, then on big ones.

    Only the provider and the claim id differ, so any latency difference is the schedule size.
    """
    small_maker = ClaimMaker(ds, seed, f"{prefix}-S")
    big_maker = ClaimMaker(ds, seed, f"{prefix}-B")
    small = (
        small_maker.claim(provider=ds.small_providers[i % len(ds.small_providers)]) for i in range(count)
    )
    big = (big_maker.claim(provider=ds.big_providers[i % len(ds.big_providers)]) for i in range(count))
    return small, big
