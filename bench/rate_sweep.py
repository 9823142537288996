"""CPU per request and latency at several paced rates, the service against the baseline.

    .venv/bin/python bench/rate_sweep.py        # after `make bench`, whose database it reuses

The benchmark measures p99 at one rate, 70% of the maximum. This sweep shows how a request's
cost moves with the load: each server's closed-loop maximum (wrk), then paced runs (bench/load.py,
open loop) at fractions of it, each on claims new to the service, with the CPU time that the
server's processes and PostgreSQL's spent per request (from /proc). On a machine whose idle
virtual CPUs cost (docs/performance.md, ninth round), the cost per request grows as the rate
falls, and more for a claim, which hops between threads and processes, than for the baseline,
which answers on one thread.

The service runs on the benchmark's database (`claims_bench`), which must already hold the
reference data; the claims it stores stay there, as with `--reuse-data`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from contextlib import ExitStack
from functools import partial
from pathlib import Path
from typing import Any

import claims_bench as cb

Json = dict[str, Any]
FRACTIONS = (0.3, 0.5, 0.7)


def paced(url: str, claims: Path, rate: float, seconds: float, session: int) -> Json:
    """An open-loop run, with CPU per answered request (load.py times the answers). The CPU window
    also spans the load process's start and its drain, a fraction of a second with the server
    idle, so the paced rows slightly overstate a request's cost."""

    def run() -> Json:
        result = cb.load_process("paced", url, seconds, claims, rate=rate)
        result["requests"] = result["latency_ms"].get("count", 0)
        return result

    return cb.measured(run, session)


def sweep(
    name: str, url: str, session: int, files: cb.Run, connections: int, args: argparse.Namespace
) -> list[Json]:
    say = cb.say
    # Sized for the baseline's rate too (wrk wraps around a shorter file: replays, which only the
    # baseline would see, since the service's rate stays far below this).
    most = 10_000 if name == "baseline" else cb.MAX_CLAIMS_PER_SECOND
    cb.wrk(url, files.mixed_file(f"{name}-warm", args.warmup, most), connections, args.warmup)
    peak_file = files.mixed_file(f"{name}-max", args.duration, most)
    peak = cb.measured(partial(cb.wrk, url, peak_file, connections, args.duration), session)
    rows = [{"load": f"maximum (wrk, {connections} connections)", **_row(peak)}]
    say(f"  {name}: maximum {peak['rate']}/s")
    for fraction in args.fractions:
        rate = round(fraction * peak["rate"], 1)
        claims = files.mixed_file(f"{name}-{fraction}", args.duration, rate)
        warm = files.mixed_file(f"{name}-{fraction}-warm", args.warmup, rate)
        cb.load_process("paced", url, args.warmup, warm, rate=rate)
        result = paced(url, claims, rate, args.duration, session)
        rows.append({"load": f"{rate}/s ({fraction:.0%})", **_row(result)})
        say(f"  {name}: {rate}/s done")
    for row in rows:
        row["against_max"] = round(row["cpu_ms"] / rows[0]["cpu_ms"], 2) if rows[0]["cpu_ms"] else None
    return rows


def _row(result: Json) -> Json:
    cpu = result["cpu_ms_per_request"]
    latency = result["latency_ms"]
    return {
        "server_ms": cpu["server"],
        "postgres_ms": cpu["postgres"],
        "cpu_ms": round(cpu["server"] + cpu["postgres"], 2),
        "p50_ms": latency.get("p50"),
        "p99_ms": latency.get("p99"),
        "errors": result["errors"],
    }


def _times(ratio: float | None) -> str:
    return "n/a" if ratio is None else f"{ratio:.2f}x"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--database-url", default=os.environ.get("CLAIMS_BENCH_DATABASE_URL", cb.DEFAULT_DATABASE_URL)
    )
    parser.add_argument("--duration", type=float, default=20, help="seconds per measured run (default 20)")
    parser.add_argument("--warmup", type=float, default=5, help="seconds of warm-up before each run")
    parser.add_argument("--workers", type=int, default=len(os.sched_getaffinity(0)), help="default: cores")
    parser.add_argument("--fractions", type=float, nargs="+", default=FRACTIONS, help="of each maximum")
    parser.add_argument("--json", type=Path, help="also write the rows here as JSON")
    args = parser.parse_args()
    args.big_rates = 1_000_000
    with tempfile.TemporaryDirectory(prefix="rate-sweep-") as tmp:
        files = cb.Run(args, Path(tmp))
        if shutil.which("wrk") is None:
            cb.say("wrk is not installed (apt-get install -y wrk)")
            return 2
        if not cb.require_data(args.database_url, files.ds):
            return 2
        results: Json = {"machine": cb.machine()}
        for name, command, server_env, health, connections in (
            ("baseline", cb.baseline_command, dict(os.environ), "/healthz", 64),
            ("service", cb.service_command, cb.service_env(args.database_url), "/readyz", 128),
        ):
            port = cb.free_port()
            url = f"http://127.0.0.1:{port}"
            with ExitStack() as stack:
                process = stack.enter_context(
                    cb.server(
                        command(port, args.workers), server_env, url + health, Path(tmp) / f"{name}.log"
                    )
                )
                results[name] = sweep(name, f"{url}/v1/claims", process.pid, files, connections, args)
    for name in ("baseline", "service"):
        print(f"{name}:")
        head = f"  {'load':30} {'server':>6}  {'PostgreSQL':>10}  {'per request':>11}  {'vs max':>6}"
        print(head + "  p50 / p99 ms  errors")
        for row in results[name]:
            print(
                f"  {row['load']:30} {row['server_ms']:6.2f}  {row['postgres_ms']:10.2f}"
                f"  {row['cpu_ms']:11.2f}"
                f"  {_times(row['against_max']):>6}  {row['p50_ms']} / {row['p99_ms']}  {row['errors']}"
            )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
