"""What idle gaps do to the CPU cost of the same work on this machine (no server, no database).

    .venv/bin/python bench/idle_cost.py

One thread parses claims of the benchmark's workload (ClaimIn from JSON, the canonical form and
its hash: work the service's event loop does for every claim) in chunks of five, sleeping a fixed
gap after each chunk, and prints the thread's CPU time per claim for each gap, in alternating
rounds. Under a closed-loop maximum the service's threads run back to back; at a paced 70% of it,
they sleep between requests. Where the CPU time per claim grows with the gap, the same code runs
slower after a pause (caches and predictors cold, a virtual CPU descheduled while idle), and "70%
of the maximum" asks for more CPU than 70% of the machine (docs/performance.md, eighth round).
"""

from __future__ import annotations

import statistics
import sys
import time
import zlib
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR.parent))

import orjson  # noqa: E402
import refdata  # noqa: E402
import workload  # noqa: E402

from service.api.schemas.claims import ClaimIn  # noqa: E402
from service.services.claims import prepare_claim  # noqa: E402

GAPS_MS = (0.0, 0.5, 2.0, 5.0)
CHUNK = 5
SECONDS = 2.0
ROUNDS = 3


def cpu_per_claim(bodies: list[bytes], gap_s: float) -> float:
    """Microseconds of this thread's CPU per claim over SECONDS of chunks and gaps."""
    started_cpu, n, i = time.thread_time(), 0, 0
    deadline = time.perf_counter() + SECONDS
    while time.perf_counter() < deadline:
        for body in bodies[i : i + CHUNK]:
            prepare_claim(ClaimIn.model_validate_json(body))
        n += CHUNK
        i = (i + CHUNK) % (len(bodies) - CHUNK)
        if gap_s:
            time.sleep(gap_s)
    return (time.thread_time() - started_cpu) / n * 1e6


def main() -> int:
    ds = refdata.build_dataset(7, 1_000_000)
    maker = workload.ClaimMaker(ds, zlib.crc32(b"idle-cost"), "idle-cost")
    bodies = [orjson.dumps(claim) for claim in workload.mixed(maker, 2_000)]
    cpu_per_claim(bodies, 0.0)  # warm-up
    results: dict[float, list[float]] = {gap: [] for gap in GAPS_MS}
    for _ in range(ROUNDS):
        for gap in GAPS_MS:
            results[gap].append(cpu_per_claim(bodies, gap / 1000))
    busy = statistics.median(results[0.0])
    print(f"CPU per claim (parse, canonical form, hash), chunks of {CHUNK}, median of {ROUNDS} rounds:")
    for gap, values in results.items():
        median = statistics.median(values)
        print(f"  gap {gap:3.1f} ms after each chunk: {median:6.1f} us  ({median / busy:.2f}x back to back)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
