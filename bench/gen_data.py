"""Generate large synthetic fee-schedule files, streamed to disk (never built in memory).

    python bench/gen_data.py csv  OUT.csv  --rows 1000000
    python bench/gen_data.py tic  OUT.json --size-mb 100 [--refs-after] [--seed 1]

CSV: `procedure_code,modifier,allowed_amount` with distinct code+modifier keys (CPT and HCPCS
codes, plain and with common modifiers). TiC: a CMS in-network-rates file (schema v2)
with valid NPIs, provider groups referenced from the rates, and a realistic mix of prices: mostly
fixed professional rates (some with modifiers), some percentages, and the kinds the importer
skips (institutional, per diem, bundles).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from service.domain.codes import npi_is_valid

CSV_MODIFIERS = ("", "26", "TC", "59", "25", "50", "LT", "RT")


def procedure_codes() -> Iterator[str]:
    """Every five-digit CPT code 10000-99999, then HCPCS A0000-V9999."""
    for n in range(10000, 100000):
        yield f"{n:05d}"
    for letter in "ABCDEGHJKLMPQRSTV":
        for n in range(10000):
            yield f"{letter}{n:04d}"


def valid_npi(n: int) -> str:
    stem = f"{100_000_000 + n:09d}"
    return next(stem + d for d in "0123456789" if npi_is_valid(stem + d))


def write_csv(path: Path, rows: int) -> None:
    with path.open("w", buffering=1 << 20) as out:
        out.write("procedure_code,modifier,allowed_amount\n")
        written = 0
        for code in procedure_codes():
            for modifier in CSV_MODIFIERS:
                if written == rows:
                    return
                cents = 1000 + (written * 7919) % 500_000
                out.write(f"{code},{modifier},{cents // 100}.{cents % 100:02d}\n")
                written += 1
    raise SystemExit(f"at most {written} distinct rows can be generated")


class TicWriter:
    def __init__(self, out: object, rng: random.Random, groups_per_block: int) -> None:
        self.out = out
        self.rng = rng
        self.groups_per_block = groups_per_block

    def write(self, text: str) -> None:
        self.out.write(text)  # type: ignore[attr-defined]

    def provider_references(self, blocks: int) -> None:
        npi_number = 0
        first = True
        for group_id in range(1, blocks * self.groups_per_block + 1):
            provider_groups = []
            for tin_index in range(self.rng.randint(1, 3)):
                npis = []
                for _ in range(self.rng.randint(1, 4)):
                    npis.append(int(valid_npi(npi_number)))
                    npi_number += 1
                tin = f"{10 + group_id % 89:02d}-{group_id * 10 + tin_index:07d}"
                provider_groups.append(
                    {"npi": npis, "tin": {"type": "ein", "value": tin, "business_name": f"Group {group_id}"}}
                )
            reference = {
                "provider_group_id": group_id,
                "network_name": ["Synthetic PPO"],
                "provider_groups": provider_groups,
            }
            self.write(("" if first else ",") + json.dumps(reference))
            first = False

    def in_network_item(self, code: str, block: int) -> str:
        rng = self.rng
        groups = list(range(block * self.groups_per_block + 1, (block + 1) * self.groups_per_block + 1))
        rng.shuffle(groups)
        negotiated_rates = []
        # Disjoint group sets per item, so every (group, code, modifier) is priced once.
        for start in range(0, rng.randint(2, 4) * 6, 6):
            references = json.dumps(groups[start : start + rng.randint(3, 6)])
            prices = ",".join(self._prices(rng))
            negotiated_rates.append(
                f'{{"provider_references": {references}, "negotiated_prices": [{prices}]}}'
            )
        code_type = "HCPCS" if code[0].isalpha() else "CPT"
        head = {
            "negotiation_arrangement": "bundle" if rng.random() < 0.01 else "ffs",
            "name": f"Procedure {code}",
            "billing_code_type": code_type,
            "billing_code_type_version": "2026",
            "billing_code": code,
            "description": f"Synthetic description of {code_type} {code}",
        }
        return json.dumps(head)[:-1] + f', "negotiated_rates": [{",".join(negotiated_rates)}]}}'

    def _prices(self, rng: random.Random) -> list[str]:
        expiration = rng.choice(["2027-12-31", "9999-12-31"])
        cents = rng.randint(2_000, 250_000)  # integer cents: money never passes through a float
        prices = [
            _price("negotiated", _money(cents), expiration),
            _price("fee schedule", _money(cents * 4 // 10), expiration, modifier="26"),
            _price("derived", _money(cents * 6 // 10), expiration, modifier="TC"),
        ]
        roll = rng.random()
        if roll < 0.05:
            prices[0] = _price("percentage", f"{rng.randint(400, 900) // 10}.{rng.randint(0, 9)}", expiration)
        elif roll < 0.15:
            prices.append(_price("negotiated", _money(cents * 3), expiration, billing_class="institutional"))
        elif roll < 0.18:
            prices.append(_price("per diem", _money(cents * 5), expiration, billing_class="both"))
        return prices


def _money(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"


def _price(
    negotiated_type: str, rate: str, expiration: str, modifier: str = "", billing_class: str = "professional"
) -> str:
    price: dict[str, object] = {
        "negotiated_type": negotiated_type,
        "expiration_date": expiration,
        "service_code": ["11", "22"],
        "billing_class": billing_class,
        "setting": "outpatient",
    }
    if modifier:
        price["billing_code_modifier"] = [modifier]
    return json.dumps(price)[:-1] + f', "negotiated_rate": {rate}}}'


def write_tic(path: Path, size_mb: float, refs_after: bool, seed: int, groups_per_block: int) -> None:
    target = int(size_mb * 1_000_000)
    codes = list(procedure_codes())
    # One block of provider groups per pass over the code list, so keys never repeat.
    blocks = 1 + target // (len(codes) * 2_000)
    rng = random.Random(seed)
    with path.open("w", buffering=1 << 20) as out:
        writer = TicWriter(out, rng, groups_per_block)
        header = {
            "reporting_entity_name": "Synthetic Health Plan",
            "reporting_entity_type": "health insurance issuer",
            "plan_name": "Synthetic PPO",
            "plan_id_type": "hios",
            "plan_id": "12345XX0010001",
            "plan_market_type": "group",
            "issuer_name": "Synthetic Issuer",
            "last_updated_on": "2026-01-01",
            "version": "2.0.0",
        }
        out.write(json.dumps(header)[:-1])
        if not refs_after:
            out.write(', "provider_references": [')
            writer.provider_references(blocks)
            out.write("]")
        out.write(', "in_network": [')
        index = 0
        while out.tell() < target or index == 0:
            block, position = divmod(index, len(codes))
            if block >= blocks:
                raise SystemExit("size too large for the code space; raise --groups-per-block")
            out.write(("," if index else "") + writer.in_network_item(codes[position], block))
            index += 1
        out.write("]")
        if refs_after:
            out.write(', "provider_references": [')
            writer.provider_references(blocks)
            out.write("]")
        out.write("}")
    print(f"{path}: {path.stat().st_size / 1e6:.1f} MB, {index} in_network items", file=sys.stderr)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="kind", required=True)
    csv_ = sub.add_parser("csv", help="a rates CSV")
    csv_.add_argument("out", type=Path)
    csv_.add_argument("--rows", type=int, default=1_000_000)
    tic = sub.add_parser("tic", help="a TiC in-network-rates JSON file")
    tic.add_argument("out", type=Path)
    tic.add_argument("--size-mb", type=float, default=100)
    tic.add_argument("--refs-after", action="store_true", help="provider_references after in_network")
    tic.add_argument("--groups-per-block", type=int, default=60)
    tic.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    if args.kind == "csv":
        write_csv(args.out, args.rows)
    else:
        write_tic(args.out, args.size_mb, args.refs_after, args.seed, args.groups_per_block)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
