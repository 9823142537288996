"""The system tests' world: reference data loaded through the API, a deterministic claim mix that
reaches every tier and cap, and the accounting checks run after load and after a crash.

The mix: 20 members (three PPO to one HMO), in-network claims from three contracted providers,
out-of-network claims (some protected by the No Surprises Act: emergencies, or an in-network
facility), prior-authorized codes competing for two units per member, expensive surgery so that
deductibles and out-of-pocket maximums are reached, and an unpriced code that pends.
"""

from __future__ import annotations

import random
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import httpx
from sqlalchemy import Engine, text

from tests import factories as f

Json = dict[str, Any]

MEMBER_COUNT = 20
PLAN_YEARS = (2025, 2026)
PPO, HMO = f.WORKED_PLAN, "SILVER-HMO"
IN_NETWORK_NPIS = (f.WORKED_NPI, f.make_npi(1), f.make_npi(2))
OUT_OF_NETWORK_NPI = f.make_npi(50)
UNPRICED_CODE = "99499"  # no rate anywhere: the claim pends

# code -> (in-network rate, reference-schedule rate), per unit
RATES: dict[str, tuple[str, str]] = {
    "99213": ("110.00", "90.00"),
    "99214": ("160.00", "130.00"),
    "93000": ("30.00", "20.00"),
    "45378": ("900.00", "650.00"),
    "29881": ("2400.00", "1600.00"),
    "70551": ("400.00", "250.00"),
    "J1100": ("2.50", "1.50"),
}
AUTHORIZED_CODES = ["70551", "29881"]
# (code, weight): office visits dominate, as they do for a real payer.
CODE_MIX = [("99213", 30), ("99214", 12), ("93000", 10), ("45378", 12), ("29881", 10), ("70551", 10)]
CODE_MIX += [("J1100", 10), (UNPRICED_CODE, 2)]

HMO_PLAN: Json = {
    **f.plan_body(),
    "code": HMO,
    "name": "Silver HMO",
    "in_network": {"deductible": "1500.00", "out_of_pocket_max": "4000.00", "coinsurance_rate": "0.30"},
    "out_of_network": None,
    "copay_categories": [
        {
            "name": "office_visit",
            "procedure_codes": ["99202-99215"],
            "in_network_copay": "40.00",
            "out_of_network_copay": None,
            "deductible_applies": False,
            "coinsurance_rate": "0.00",
        }
    ],
    "prior_authorization_codes": ["70551-70553", "29881"],
}


def member_id(n: int) -> str:
    return f"M-SYS-{n:02d}"


def authorization_number(n: int) -> str:
    return f"PA-SYS-{n:02d}"


def _rates(column: int, scale: Decimal = Decimal(1)) -> list[Json]:
    cent = Decimal("0.01")
    return [
        {"procedure_code": code, "allowed_amount": str((Decimal(pair[column]) * scale).quantize(cent))}
        for code, pair in RATES.items()
    ]


def load_reference_data(admin: httpx.Client) -> None:
    """Networks, providers, fee schedules, contracts, two plans, members and authorizations."""
    f.network(admin)
    for n, npi in enumerate((*IN_NETWORK_NPIS, OUT_OF_NETWORK_NPI)):
        f.provider(admin, npi=npi, name=f"System provider {n}")
    f.fee_schedule(admin, rates=_rates(0))
    f.fee_schedule(admin, code="BETA-2026", name="Beta 2026", rates=_rates(0, Decimal("1.1")))
    f.reference_fee_schedule(admin, rates=_rates(1))
    for npi, schedule in zip(IN_NETWORK_NPIS, ("ACME-2026", "ACME-2026", "BETA-2026"), strict=True):
        f.contract(admin, provider_npi=npi, fee_schedule_code=schedule, effective_from="2025-01-01")
    f.plan(admin)
    f.created(admin, "/v1/plans", HMO_PLAN)
    for n in range(MEMBER_COUNT):
        f.member(
            admin,
            member_id=member_id(n),
            plan_code=HMO if n % 4 == 3 else PPO,
            coverage_from="2025-01-01",
            # One member's coverage ends mid-2026: later lines are denied (CARC 27).
            coverage_to="2026-06-30" if n == MEMBER_COUNT - 1 else None,
        )
        f.authorization(
            admin,
            authorization_number=authorization_number(n),
            member_id=member_id(n),
            procedure_codes=AUTHORIZED_CODES,
            units=2,
            valid_from="2025-01-01",
            valid_to="2026-12-31",
        )


class ClaimFactory:
    """Deterministic, valid claims: the same seed gives the same claims."""

    def __init__(self, seed: int, prefix: str) -> None:
        self.rng = random.Random(seed)
        self.prefix = prefix
        codes, weights = zip(*CODE_MIX, strict=True)
        self._codes, self._weights = list(codes), list(weights)

    def claim(self, n: int, member: str | None = None) -> Json:
        rng = self.rng
        first_day = date(2025, 1, 2) + timedelta(days=rng.randrange(660))  # to late Oct 2026
        out_of_network = rng.random() < 0.3
        emergency = out_of_network and rng.random() < 0.4
        facility = IN_NETWORK_NPIS[0] if out_of_network and not emergency and rng.random() < 0.3 else None
        days = [first_day + timedelta(days=rng.randrange(3)) for _ in range(rng.randint(1, 4))]
        lines = [self._line(number, day) for number, day in enumerate(days, start=1)]
        last_day = max(date.fromisoformat(line["service_date"]) for line in lines)
        return {
            "claim_id": f"{self.prefix}-{n:04d}",
            "member_id": member or member_id(rng.randrange(MEMBER_COUNT)),
            "billing_provider_npi": OUT_OF_NETWORK_NPI if out_of_network else rng.choice(IN_NETWORK_NPIS),
            "facility_npi": facility,
            "place_of_service": "23" if emergency else "11",
            "emergency": emergency,
            "received_date": (last_day + timedelta(days=rng.randint(1, 20))).isoformat(),
            "diagnosis_codes": [rng.choice(["J06.9", "M17.11", "R07.9", "Z12.11", "E11.9"])],
            "lines": lines,
        }

    def _line(self, number: int, day: date) -> Json:
        code = self.rng.choices(self._codes, self._weights)[0]
        units = self.rng.randint(1, 20) if code == "J1100" else 1
        rate = Decimal(RATES[code][0]) if code in RATES else Decimal("150.00")
        billed = rate * units * Decimal(self.rng.uniform(1.05, 2.5))
        return {
            "line_number": number,
            "procedure_code": code,
            "modifiers": [],
            "units": units,
            "billed_amount": str(billed.quantize(Decimal("0.01"))),
            "service_date": day.isoformat(),
        }


# ---------------------------------------------------------------- accounting checks


def _money(text: str) -> Decimal:
    return Decimal(text)


def expected_accumulators(eobs: list[Json]) -> dict[tuple[str, int, str], tuple[Decimal, Decimal]]:
    """(member, plan year, tier) -> (deductible met, out-of-pocket met), summed over the EOBs.

    Only paid lines of claims that are not voided count; a line's tier is in-network when the
    provider is in network or the line is protected, and its plan year is its service date's.
    """
    sums: dict[tuple[str, int, str], list[Decimal]] = defaultdict(lambda: [Decimal(0), Decimal(0)])
    for eob in eobs:
        if eob["status"] == "voided":
            continue
        for line in eob["lines"]:
            if line["status"] != "paid":
                continue
            in_network = line["network_status"] == "in_network" or line["protected"]
            tier = "in_network" if in_network else "out_of_network"
            year = date.fromisoformat(line["service_date"]).year
            deductible = _money(line["deductible_amount"])
            out_of_pocket = deductible + _money(line["copay_amount"]) + _money(line["coinsurance_amount"])
            bucket = sums[(eob["member_id"], year, tier)]
            bucket[0] += deductible
            bucket[1] += out_of_pocket
    return {key: (d, o) for key, (d, o) in sums.items()}


def check_accumulators(reader: httpx.Client, members: list[str], eobs: list[Json]) -> int:
    """Every member's accumulators equal the sums over their stored EOBs, within the plan's limits.

    Returns how many buckets were compared (so a caller can insist it was not zero).
    """
    expected = expected_accumulators(eobs)
    compared = 0
    for member in members:
        for year in PLAN_YEARS:
            response = reader.get(f"/v1/members/{member}/accumulators", params={"plan_year": year})
            assert response.status_code == 200, response.text
            body = response.json()
            for tier in ("in_network", "out_of_network"):
                want = expected.get((member, year, tier), (Decimal(0), Decimal(0)))
                got = body[tier]
                if got is None:  # HMO: no out-of-network tier, so nothing may have been posted there
                    assert want == (Decimal(0), Decimal(0)), (member, year, tier, want)
                    continue
                met = (_money(got["deductible_met"]), _money(got["out_of_pocket_met"]))
                assert met == want, f"{member} {year} {tier}: stored {met}, EOBs sum to {want}"
                assert met[0] <= _money(got["deductible"]), (member, year, tier, got)
                assert met[1] <= _money(got["out_of_pocket_max"]), (member, year, tier, got)
                compared += 1
    return compared


def caps_reached(eobs: list[Json]) -> dict[str, int]:
    """How many (member, year, tier) buckets reached their deductible / out-of-pocket maximum.

    Read from the EOB snapshots; proves the load pushed members against the limits it checks.
    """
    deductible, out_of_pocket = set(), set()
    for eob in eobs:
        snapshot = eob.get("accumulators")
        if not snapshot:
            continue
        for tier in ("in_network", "out_of_network"):
            t = snapshot[tier]
            if t is None:
                continue
            key = (eob["member_id"], snapshot["plan_year"], tier)
            if t["deductible_met"] == t["deductible"]:
                deductible.add(key)
            if t["out_of_pocket_met"] == t["out_of_pocket_max"]:
                out_of_pocket.add(key)
    return {"deductible": len(deductible), "out_of_pocket_max": len(out_of_pocket)}


def fetch_eobs(reader: httpx.Client, claim_ids: list[str], clients: int = 8) -> dict[str, httpx.Response]:
    """GET every claim (concurrently; bounded by the client's timeout per request)."""
    with ThreadPoolExecutor(clients) as pool:
        responses = pool.map(lambda claim_id: reader.get(f"/v1/claims/{claim_id}"), claim_ids, timeout=120)
        return dict(zip(claim_ids, responses, strict=True))


def check_stored_claims_complete(engine: Engine) -> int:
    """No claim is half-stored: every stored claim has exactly the lines it was submitted with."""
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT c.claim_id, c.request, count(l.id) FROM claims c "
                "LEFT JOIN claim_lines l ON l.claim_id = c.id GROUP BY c.id"
            )
        ).all()
    partial = [(claim_id, len(req["lines"]), n) for claim_id, req, n in rows if n != len(req["lines"])]
    assert not partial, f"claims stored without all their lines (claim, submitted, stored): {partial}"
    return len(rows)


def check_authorization_units(engine: Engine) -> int:
    """Units used equal the units held by non-voided claims' lines, and never exceed the units granted."""
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT a.authorization_number, a.units, a.units_used, "
                "  (SELECT coalesce(sum(l.authorization_units), 0) FROM claim_lines l "
                "   JOIN claims c ON c.id = l.claim_id "
                "   WHERE l.authorization_id = a.id AND c.status <> 'voided') "
                "FROM authorizations a"
            )
        ).all()
    wrong = [row for row in rows if row[2] != row[3] or row[2] > row[1]]
    assert not wrong, f"authorization units (number, granted, used, held by claims): {wrong}"
    return sum(row[2] for row in rows)
