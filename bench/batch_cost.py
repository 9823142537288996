"""What a batch of claims costs in CPU, by batch size: the submit path without HTTP.

    .venv/bin/python bench/batch_cost.py        # after `make bench`, whose database it reuses

In one process and one thread, with the service's own engines and batcher, it submits new claims
of the benchmark's workload in batches of 1, 4, 16 and 64 (SubmitBatcher.run_batch on an event
loop: the transaction a served worker runs, PostgreSQL included), in alternating rounds, and
prints for each size this thread's CPU and PostgreSQL's CPU per claim. A straight line through
(1/size, CPU per claim) splits the cost into what every claim pays and what every batch pays
whatever its size (the session, the statements' round trips and per-statement work, COMMIT):
the part that makes a claim dearer at partial load, where batches are small
(docs/performance.md, tenth round).

The figures are CPU time, not latency, so they are steadier than the HTTP benchmark's on a noisy
machine; each claim is new (it is adjudicated and stored, as under load).
- PostgreSQL's CPU is that of every process named postgres on this machine
  (claims_bench.cpu_ticks), in clock ticks (10 ms): run it on an otherwise idle machine, with
  PostgreSQL on it (it says so when it sees none). Each figure counts some 30-150 ticks.
- The fit uses the batches' actual mean size (take() leaves a claim out when its member is
  already in the batch), and prints what it leaves unexplained.
- It stores some 12,000 claims in the benchmark's database a run: later runs of the HTTP
  benchmark with --reuse-data start from larger tables.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import zlib
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR.parent))

import claims_bench as cb  # noqa: E402
import orjson  # noqa: E402
import refdata  # noqa: E402
import uvloop  # noqa: E402
import workload  # noqa: E402

from service.api.schemas.claims import ClaimIn  # noqa: E402
from service.db.session import (  # noqa: E402
    create_async_session_factory,
    create_db_engine,
    create_session_factory,
    create_submit_engine,
)
from service.services.batching import SubmitBatcher  # noqa: E402
from service.services.claims import ClaimToSubmit, prepare_claim  # noqa: E402
from service.settings import Settings  # noqa: E402

SIZES = (1, 4, 16, 64)
CLAIMS_PER_RUN = 512  # a multiple of every size


def run(
    loop: uvloop.Loop, batcher: SubmitBatcher, claims: list[ClaimToSubmit], size: int
) -> tuple[float, float, float]:
    """This thread's and PostgreSQL's CPU per claim (ms) for `claims` in the batcher's batches,
    and the batches' mean size."""
    # take() wants the queue's entries (claim, future, arrival); only the claims matter here.
    pending: list[Any] = [(claim, None, 0.0) for claim in claims]
    batches = 0
    cpu, pg = time.thread_time(), cb.cpu_ticks(command="postgres")
    while pending:
        # take() walks what it is given: a window, as the service's queue is short.
        window, pending = pending[: 2 * size], pending[2 * size :]
        batch, rest = batcher.take(window)
        pending = rest + pending
        batches += 1
        for outcome in loop.run_until_complete(batcher.run_batch([entry[0] for entry in batch])):
            if isinstance(outcome, Exception):
                raise outcome
    return (
        (time.thread_time() - cpu) * 1000 / len(claims),
        cb.cpu_spent(pg, cb.cpu_ticks(command="postgres")) * 1000 / len(claims),
        len(claims) / batches,
    )


def fit(points: list[tuple[float, float]]) -> tuple[float, float, float]:
    """Least squares of cost per claim = a + b / size over (size, cost) points: (a, b, the largest
    residual): per claim, per batch, and how far the line misses a point."""
    xs = [1 / size for size, _ in points]
    ys = [cost for _, cost in points]
    slope, intercept = statistics.linear_regression(xs, ys)
    residual = max(abs(y - (intercept + slope * x)) for x, y in zip(xs, ys, strict=True))
    return intercept, slope, residual


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument(
        "--database-url", default=os.environ.get("CLAIMS_BENCH_DATABASE_URL", cb.DEFAULT_DATABASE_URL)
    )
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    ds = refdata.build_dataset(7, 1_000_000)
    if not cb.require_data(args.database_url, ds):
        return 2
    settings = Settings(database_url=args.database_url)
    session_factory = create_session_factory(create_db_engine(settings))
    submit_engine = create_submit_engine(settings)
    assert submit_engine is not None  # a PostgreSQL URL (require_data checked it)
    async_factory = create_async_session_factory(submit_engine)
    batchers = {
        size: SubmitBatcher(session_factory, size, async_session_factory=async_factory) for size in SIZES
    }
    loop = uvloop.new_event_loop()  # the batches run on it, as on a served worker's (uvicorn's)
    run_id = f"bc{time.time_ns()}-"  # new claim ids in every run
    maker = workload.ClaimMaker(ds, zlib.crc32(run_id.encode()), run_id)

    def new_claims() -> list[ClaimToSubmit]:
        bodies = [orjson.dumps(c) for c in workload.mixed(maker, CLAIMS_PER_RUN)]
        return [prepare_claim(ClaimIn.model_validate_json(body)) for body in bodies]

    for size in SIZES:  # warm-up: connections, prepared statements, caches
        run(loop, batchers[size], new_claims(), size)
    results: dict[int, list[tuple[float, float, float]]] = {size: [] for size in SIZES}
    for i in range(args.rounds):
        for size in SIZES if i % 2 == 0 else reversed(SIZES):
            results[size].append(run(loop, batchers[size], new_claims(), size))
    if all(pg == 0 for rows in results.values() for _, pg, _ in rows):
        cb.say("no CPU seen in postgres processes: is PostgreSQL on this machine? Its column is 0")
    print(f"CPU per claim by batch size, median of {args.rounds} rounds of {CLAIMS_PER_RUN} new claims:")
    print("  size (mean)   the batch      PostgreSQL    both")
    medians = {}
    for size in SIZES:
        thread = statistics.median(t for t, _, _ in results[size])
        pg = statistics.median(p for _, p, _ in results[size])
        mean_size = statistics.mean(m for _, _, m in results[size])
        medians[size] = (thread, pg, mean_size)
        print(f"  {size:4d} ({mean_size:4.1f})   {thread:9.3f} ms   {pg:7.3f} ms   {thread + pg:6.3f} ms")
    for name, index in (("the batch", 0), ("PostgreSQL", 1)):
        per_claim, per_batch, residual = fit([(medians[size][2], medians[size][index]) for size in SIZES])
        print(
            f"  {name}: {per_claim:.3f} ms a claim + {per_batch:.3f} ms a batch"
            f" (the line misses a point by up to {residual:.3f} ms)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
