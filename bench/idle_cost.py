"""What idle gaps do to the CPU cost of the same work on this machine (no server, no database).

    .venv/bin/python bench/idle_cost.py

One thread parses claims of the benchmark's workload (ClaimIn from JSON, the canonical form and
its hash: work the service's event loop does for every claim) in chunks of five, with a fixed gap
after each chunk, and prints the time the chunks took per claim for each gap, in alternating
rounds. The gap is spent two ways: asleep (the thread blocks, as a server's threads do between
requests) or spinning (the thread stays runnable, so its virtual CPU never goes idle). Under a
closed-loop maximum the service's threads run back to back; at a paced 70% of it, they sleep
between requests. Where the work slows down after a sleep but not after a spin, it is the idle
virtual CPU that costs (halted, handed to another guest, its caches cold when it comes back),
not the gap itself, and "70% of the maximum" asks for more CPU than 70% of the machine
(docs/performance.md, eighth and ninth rounds).
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
MODES = ("sleep", "spin")
CHUNK = 5
SECONDS = 2.0
ROUNDS = 3


def work_per_claim(bodies: list[bytes], gap_s: float, mode: str) -> tuple[float, float]:
    """Microseconds per claim over SECONDS of chunks and gaps: the chunks' own time (a clock read
    around each chunk), and this thread's CPU time outside the gaps (for sleep; a spin's gap is
    CPU time too)."""
    started_cpu, n, i, working = time.thread_time(), 0, 0, 0.0
    deadline = time.perf_counter() + SECONDS
    while time.perf_counter() < deadline:
        t0 = time.perf_counter()
        for body in bodies[i : i + CHUNK]:
            prepare_claim(ClaimIn.model_validate_json(body))
        working += time.perf_counter() - t0
        n += CHUNK
        i = (i + CHUNK) % (len(bodies) - CHUNK)
        if gap_s and mode == "sleep":
            time.sleep(gap_s)
        elif gap_s:
            until = time.perf_counter() + gap_s
            while time.perf_counter() < until:
                pass
    cpu = (time.thread_time() - started_cpu) / n * 1e6 if mode == "sleep" else float("nan")
    return working / n * 1e6, cpu


def main() -> int:
    ds = refdata.build_dataset(7, 1_000_000)
    maker = workload.ClaimMaker(ds, zlib.crc32(b"idle-cost"), "idle-cost")
    bodies = [orjson.dumps(claim) for claim in workload.mixed(maker, 2_000)]
    work_per_claim(bodies, 0.0, "sleep")  # warm-up
    runs = [(gap, mode) for gap in GAPS_MS for mode in MODES if gap or mode == "sleep"]
    results: dict[tuple[float, str], list[tuple[float, float]]] = {run: [] for run in runs}
    for _ in range(ROUNDS):
        for gap, mode in runs:
            results[(gap, mode)].append(work_per_claim(bodies, gap / 1000, mode))
    busy = statistics.median(w for w, _ in results[(0.0, "sleep")])
    print(f"Time per claim (parse, canonical form, hash), chunks of {CHUNK}, median of {ROUNDS} rounds:")
    for (gap, mode), values in results.items():
        working = statistics.median(w for w, _ in values)
        gap_text = f"{gap:3.1f} ms {mode:5}" if gap else "none        "
        line = f"  gap {gap_text} after each chunk: {working:6.1f} us"
        line += f"  ({working / busy:.2f}x back to back)"
        if mode == "sleep":
            line += f", thread CPU {statistics.median(c for _, c in values):6.1f} us"
        print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
