"""Claims benchmark (issue 7): claims/s and latency through HTTP on PostgreSQL, against a baseline.

    .venv/bin/python bench/claims_bench.py --duration 20

One run, in this order:
1. two servers side by side on free loopback ports, one worker per core each: the service
   (`claims-service serve`, as `python -m service.cli serve`) on PostgreSQL, and the baseline,
   bench/baseline_app.py (parse the claim into the service's ClaimIn and echo it) under the same
   uvicorn; the benchmark database is emptied (DROP SCHEMA) and the reference data of
   bench/refdata.py is loaded through the API (rates through the CSV endpoint);
2. maximum throughput: wrk (a separate process, closed loop) posts claims of 1 to 5 lines to
   the baseline and new claims to the service, in alternating rounds of about 5 s, each with the
   number of connections (2 to 128) that was fastest for it in a 3 s probe;
3. p99 at 70% of the service's maximum: bench/load.py posts at a fixed rate (open loop); the
   phase's batches (how many, their size, the long ones) come from the service's /metrics;
4. cost growth, one claim at a time, alternating: 1-line vs 50-line claims, and the same claims
   billed by providers on 2,000-rate vs 1,000,000-rate fee schedules;
5. checks that every accumulator equals the sums over the stored claim lines (and postings).

Targets (issue 7), all from this one run: claims/s >= 0.20x the baseline's requests/s with zero
errors; p99 <= 50 ms at 70% of the maximum; 1,000,000-rate latency within 10% of 2,000-rate
latency (medians). Exit status 0 when every target and check passes.

Needs wrk (`apt-get install -y wrk`) and PostgreSQL. The benchmark database (--database-url,
default claims_bench on 127.0.0.1) is created if missing and EMPTIED on every run, unless
--reuse-data finds it already loaded.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import zlib
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from functools import partial
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
sys.path.insert(0, str(ROOT))  # the service package, whether or not it is pip-installed

import psycopg  # noqa: E402
import refdata  # noqa: E402
import workload  # noqa: E402

BIN = Path(sys.executable).parent
DEFAULT_DATABASE_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/claims_bench"
API_KEY = "bench-" + secrets.token_hex(8)
MAX_CLAIMS_PER_SECOND = 1_500  # sizes the claim files; a faster server wraps (see claims.lua)
SEED = 7
PROBE_CONNECTIONS = (2, 4, 8, 16, 32, 64, 128)  # closed-loop concurrencies tried for each maximum

Json = dict[str, Any]


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- processes


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_until_up(url: str, process: subprocess.Popen[bytes], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode} before answering {url}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{url} did not answer within {timeout}s")


def _proc_stats() -> Iterator[list[str]]:
    """/proc/<pid>/stat of every process, split after the command name."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                raw = (entry / "stat").read_text()
            except OSError:
                continue  # it exited
            comm = raw[raw.index("(") + 1 : raw.rindex(")")]
            yield [entry.name, comm, *raw[raw.rindex(")") + 2 :].split()]


def cpu_ticks(*, session: int | None = None, command: str | None = None) -> dict[int, int]:
    """CPU ticks (user + system) so far of each process in a session (a server and its workers) or
    with a command name (every PostgreSQL process)."""
    ticks = {}
    for fields in _proc_stats():
        # fields: pid, comm, state, ppid, pgrp, session, ..., utime at 13, stime at 14
        if (session is not None and int(fields[5]) == session) or fields[1] == command:
            ticks[int(fields[0])] = int(fields[13]) + int(fields[14])
    return ticks


def cpu_spent(before: dict[int, int], after: dict[int, int]) -> float:
    """Seconds of CPU between two cpu_ticks() (processes that exited in between are not counted)."""
    return sum(t - before.get(pid, 0) for pid, t in after.items()) / os.sysconf("SC_CLK_TCK")


@contextmanager
def server(
    command: list[str], env: dict[str, str], health_url: str, log: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """Run a server (own process group) until the block ends; its output goes to `log`."""
    env = {**env, "PYTHONPATH": str(ROOT)}
    with log.open("ab") as out:
        process = subprocess.Popen(
            command, env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        wait_until_up(health_url, process)
        yield process
    finally:
        process.send_signal(signal.SIGTERM)  # uvicorn's supervisor stops its workers
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def baseline_command(port: int, workers: int) -> list[str]:
    return [
        str(BIN / "uvicorn"),
        "baseline_app:app",
        "--app-dir",
        str(BENCH_DIR),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--no-access-log",
        "--timeout-graceful-shutdown",
        "10",
    ]


def service_env(database_url: str) -> dict[str, str]:
    """The service's environment: the benchmark's database, and its API key with every scope."""
    return {
        **os.environ,
        "CLAIMS_DATABASE_URL": database_url,
        "CLAIMS_API_KEYS": json.dumps({API_KEY: ["admin", "claims:write", "claims:read"]}),
    }


def service_command(port: int, workers: int) -> list[str]:
    # `python -m service.cli` is the `claims-service` console script, installed or not.
    serve = [sys.executable, "-m", "service.cli", "serve"]
    return [*serve, "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)]


# ---------------------------------------------------------------- load generators


def measured(run: Callable[[], Json], server_session: int) -> Json:
    """A wrk run, with the CPU that the server's processes and PostgreSQL spent per request."""
    before = cpu_ticks(session=server_session), cpu_ticks(command="postgres")
    result = run()
    after = cpu_ticks(session=server_session), cpu_ticks(command="postgres")
    n = max(1, result["requests"])
    result["cpu_ms_per_request"] = {
        "server": round(cpu_spent(before[0], after[0]) * 1000 / n, 2),
        "postgres": round(cpu_spent(before[1], after[1]) * 1000 / n, 2),
    }
    return result


def wrk(url: str, claims: Path, connections: int, duration: float) -> Json:
    """Closed loop: `connections` connections, each posting the next claim as soon as it has an answer."""
    command = [
        "wrk",
        "--threads",
        "1",
        "--connections",
        str(connections),
        "--duration",
        f"{max(1, round(duration))}s",
        "--timeout",
        "10s",
        "--script",
        str(BENCH_DIR / "claims.lua"),
        url,
        "--",
        str(claims),
        API_KEY,
        "1",
    ]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    line = next(ln for ln in output.splitlines() if ln.startswith("WRK_JSON "))
    raw = json.loads(line.removeprefix("WRK_JSON "))
    seconds = raw["duration_us"] / 1e6
    latency = {k: round(v / 1000, 2) for k, v in raw["latency_us"].items()}
    return {
        "requests": raw["requests"],
        "seconds": round(seconds, 2),
        "rate": round(raw["requests"] / seconds, 1),
        "errors": sum(raw["errors"].values()),
        "error_kinds": raw["errors"],
        "latency_ms": latency,
    }


def load_process(mode: str, url: str, duration: float, *files: Path, rate: float | None = None) -> Json:
    command = [sys.executable, str(BENCH_DIR / "load.py"), mode, "--url", url, "--api-key", API_KEY]
    command += ["--claims", str(files[0]), "--duration", str(duration)]
    if rate is not None:
        command += ["--rate", f"{rate:.1f}"]
    if len(files) > 1:
        command += ["--claims-b", str(files[1])]
    output = subprocess.run(command, capture_output=True, text=True, check=True, timeout=duration + 120)
    result: Json = json.loads(output.stdout)
    return result


BATCH_SIZE = "claims_submit_batch_claims"
BATCH_DURATION = "claims_submit_batch_duration_seconds"
SLOW_BATCH_MS = (20, 50, 100)  # bucket bounds of BATCH_DURATION


def batch_histograms(base_url: str) -> dict[str, dict[float, float]]:
    """The service's group-commit histograms from /metrics (all workers' samples, aggregated):
    for each, cumulative bucket counts by upper bound, and the sum under the key -1."""
    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(base_url + "/metrics", timeout=10) as response:
        text = response.read().decode()
    found: dict[str, dict[float, float]] = {BATCH_SIZE: {}, BATCH_DURATION: {}}
    for family in text_string_to_metric_families(text):
        if family.name in found:
            for sample in family.samples:
                if sample.name.endswith("_bucket"):
                    found[family.name][float(sample.labels["le"])] = sample.value
                elif sample.name.endswith("_sum"):
                    found[family.name][-1] = sample.value
    return found


def batches_between(before: dict[str, dict[float, float]], after: dict[str, dict[float, float]]) -> Json:
    """The batches of one phase: how many, their mean size, how many lasted longer than each of
    SLOW_BATCH_MS. A stall at 70% of the maximum shows as a few long batches of many claims."""

    def delta(name: str, key: float) -> float:
        return after[name].get(key, 0.0) - before[name].get(key, 0.0)

    count = delta(BATCH_SIZE, float("inf"))
    return {
        "batches": int(count),
        "mean_claims": round(delta(BATCH_SIZE, -1) / count, 1) if count else None,
        "longer_than_ms": {ms: int(count - delta(BATCH_DURATION, ms / 1000)) for ms in SLOW_BATCH_MS},
    }


# ---------------------------------------------------------------- database


def psycopg_url(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def ensure_database(url: str) -> None:
    target = psycopg.conninfo.conninfo_to_dict(psycopg_url(url))
    name = str(target["dbname"])
    admin = psycopg.conninfo.make_conninfo(psycopg_url(url), dbname="postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is None:
            conn.execute(psycopg.sql.SQL("CREATE DATABASE {}").format(psycopg.sql.Identifier(name)))


def empty_database(url: str) -> None:
    with psycopg.connect(psycopg_url(url), autocommit=True) as conn:
        conn.execute("DROP SCHEMA public CASCADE")
        conn.execute("CREATE SCHEMA public")


def vacuum_and_analyze(url: str) -> None:
    """The state autovacuum keeps a production server in, which this machine's server (autovacuum
    off) does not reach by itself: planner statistics (without them PostgreSQL plans a freshly
    loaded database as if every table were tiny: seq scans of all 900 contracts for each claim),
    and freshly loaded rows vacuumed (hint bits and visibility map set: otherwise the first claims
    to read each page pay for that, measured at 1.21 vs 0.44-0.59 ms of PostgreSQL CPU per
    claim). The checkpoint keeps the load's own checkpoint out of the measured phases."""
    with psycopg.connect(psycopg_url(url), autocommit=True) as conn:
        conn.execute("VACUUM (ANALYZE)")
        conn.execute("CHECKPOINT")


def analyze(url: str) -> None:
    """Planner statistics for the tables the warm-up wrote to, as autovacuum gathers them on a
    production server (it analyzes a table after 50 rows plus 10% of its size changed; this
    machine's server runs with autovacuum off). Without it, in a run from an empty database,
    the plans PostgreSQL cached while the claims tables were empty stayed in use as they grew:
    the claims table was read sequentially 52,336 times (202 million rows) in one run, the
    paced phase fell behind (p99 4.5 s) and PostgreSQL's CPU per claim was 0.43 ms at the
    maximum instead of 0.26. ANALYZE also invalidates those cached plans."""
    with psycopg.connect(psycopg_url(url), autocommit=True) as conn:
        conn.execute("ANALYZE")


def data_loaded(url: str, ds: refdata.Dataset) -> bool:
    """True when the database holds this dataset (the last things loaded, at full size)."""
    try:
        with psycopg.connect(psycopg_url(url)) as conn:
            members = conn.execute("SELECT count(*) FROM members").fetchone()
            big = conn.execute(
                "SELECT rate_count FROM fee_schedules WHERE code = %s", (refdata.big_schedule(1),)
            ).fetchone()
            authorizations = conn.execute("SELECT count(*) FROM authorizations").fetchone()
    except psycopg.errors.UndefinedTable:
        return False
    expected_authorizations = len(range(0, refdata.MEMBERS, 3))
    return (
        members == (refdata.MEMBERS,)
        and big == (ds.big_rates,)
        and authorizations == (expected_authorizations,)
    )


def require_data(url: str, ds: refdata.Dataset) -> bool:
    """For the tools that reuse this benchmark's database: whether it holds the data set, saying
    why not when it does not."""
    try:
        if data_loaded(url, ds):
            return True
    except psycopg.OperationalError as exc:
        say(f"cannot reach {url}: {exc}")
        return False
    say(f"{url} does not hold the benchmark's reference data: run `make bench` first")
    return False


ACCUMULATOR_CHECK = """
WITH lines AS (
    SELECT l.member_id, CAST(EXTRACT(YEAR FROM l.service_date) AS integer) AS plan_year,
           l.accumulator_tier AS tier,
           sum(l.deductible_amount) AS deductible,
           sum(l.deductible_amount + l.copay_amount + l.coinsurance_amount) AS out_of_pocket
    FROM claim_lines l JOIN claims c ON c.id = l.claim_id
    WHERE c.status <> 'voided' AND l.status = 'paid' AND l.accumulator_tier IS NOT NULL
    GROUP BY 1, 2, 3
), postings AS (
    SELECT p.member_id, p.plan_year, p.tier,
           sum(p.deductible) AS deductible, sum(p.out_of_pocket) AS out_of_pocket
    FROM accumulator_postings p JOIN claims c ON c.id = p.claim_id
    WHERE c.status <> 'voided'
    GROUP BY 1, 2, 3
), buckets AS (
    SELECT coalesce(a.member_id, l.member_id, p.member_id) AS member_id,
           coalesce(a.deductible_met, 0) AS met_deductible, coalesce(a.out_of_pocket_met, 0) AS met_oop,
           coalesce(l.deductible, 0) AS line_deductible, coalesce(l.out_of_pocket, 0) AS line_oop,
           coalesce(p.deductible, 0) AS posted_deductible, coalesce(p.out_of_pocket, 0) AS posted_oop,
           coalesce(a.tier, l.tier, p.tier) AS tier
    FROM accumulators a
    FULL JOIN lines l USING (member_id, plan_year, tier)
    FULL JOIN postings p USING (member_id, plan_year, tier)
)
SELECT count(*),
       count(*) FILTER (WHERE met_deductible <> line_deductible OR met_oop <> line_oop),
       count(*) FILTER (WHERE met_deductible <> posted_deductible OR met_oop <> posted_oop),
       count(*) FILTER (WHERE met_deductible > CASE WHEN b.tier = 'in_network'
                                                    THEN p.in_deductible ELSE p.oon_deductible END
                           OR met_oop > CASE WHEN b.tier = 'in_network'
                                             THEN p.in_out_of_pocket_max ELSE p.oon_out_of_pocket_max END)
FROM buckets b JOIN members m ON m.id = b.member_id JOIN plans p ON p.id = m.plan_id
"""

# The lines' and postings' copies of their claim's member id, which have no foreign key of their
# own (migration 0004): the check above groups by them, so they must be right.
MEMBER_COPIES_CHECK = """
SELECT (SELECT count(*) FROM claim_lines l JOIN claims c ON c.id = l.claim_id
        WHERE l.member_id IS DISTINCT FROM c.member_id)
     + (SELECT count(*) FROM accumulator_postings p JOIN claims c ON c.id = p.claim_id
        WHERE p.member_id IS DISTINCT FROM c.member_id)
"""


def check_accumulators(url: str) -> Json:
    """Accumulators against the sums over stored EOB lines and over the postings, and the plan limits."""
    with psycopg.connect(psycopg_url(url)) as conn:
        row = conn.execute(ACCUMULATOR_CHECK).fetchone()
        copies = conn.execute(MEMBER_COPIES_CHECK).fetchone()
        claims = conn.execute("SELECT status, count(*) FROM claims GROUP BY 1 ORDER BY 1").fetchall()
    assert row is not None and copies is not None
    buckets, vs_lines, vs_postings, over_limit = row
    return {
        "buckets": buckets,
        "mismatch_vs_lines": vs_lines,
        "mismatch_vs_postings": vs_postings,
        "over_plan_limit": over_limit,
        "member_copies_mismatched": copies[0],
        "claims_by_status": dict(claims),
        "ok": buckets > 0 and vs_lines == vs_postings == over_limit == copies[0] == 0,
    }


# ---------------------------------------------------------------- the run


def machine() -> Json:
    cpu = next(
        (
            ln.split(":", 1)[1].strip()
            for ln in Path("/proc/cpuinfo").read_text().splitlines()
            if ln.startswith("model name")
        ),
        platform.processor(),
    )
    mem_kb = next(
        int(ln.split()[1])
        for ln in Path("/proc/meminfo").read_text().splitlines()
        if ln.startswith("MemTotal")
    )
    return {
        "cores": len(os.sched_getaffinity(0)),
        "cpu": cpu,
        "ram_gib": round(mem_kb / 2**20, 1),
        "python": platform.python_version(),
    }


class Run:
    def __init__(self, args: argparse.Namespace, tmp: Path) -> None:
        self.args = args
        self.tmp = tmp
        self.run_id = secrets.token_hex(3)
        self.ds = refdata.build_dataset(SEED, args.big_rates)
        self.results: Json = {"machine": machine(), "args": vars(args)}
        self.baseline_pid = self.service_pid = 0  # the servers' session ids, once started

    def claims_file(self, name: str, claims: Iterator[Json]) -> Path:
        return workload.write(self.tmp / f"{name}.jsonl", claims)

    def maker(self, name: str) -> workload.ClaimMaker:
        prefix = f"{self.run_id}-{name}"
        return workload.ClaimMaker(self.ds, zlib.crc32(prefix.encode()), prefix)

    def mixed_file(self, name: str, seconds: float, rate: float = MAX_CLAIMS_PER_SECOND) -> Path:
        return self.claims_file(name, workload.mixed(self.maker(name), int(seconds * rate) + 100))

    def run(self) -> None:
        """Both servers side by side; the service's database loaded; every phase; the check."""
        args = self.args
        ensure_database(args.database_url)
        reuse = args.reuse_data and data_loaded(args.database_url, self.ds)
        if not reuse:
            empty_database(args.database_url)
        env = service_env(args.database_url)
        base_port, port = free_port(), free_port()
        base_url, url = f"http://127.0.0.1:{base_port}", f"http://127.0.0.1:{port}"
        say(f"baseline: {args.workers} uvicorn workers on port {base_port}")
        say(f"service: {args.workers} workers on port {port}, database {args.database_url}")
        with ExitStack() as servers:
            baseline = baseline_command(base_port, args.workers)
            self.baseline_pid = servers.enter_context(
                server(baseline, dict(os.environ), f"{base_url}/healthz", self.tmp / "baseline.log")
            ).pid
            self.service_pid = servers.enter_context(
                server(service_command(port, args.workers), env, f"{url}/readyz", self.tmp / "service.log")
            ).pid
            if reuse:
                say("reference data already loaded (--reuse-data)")
            else:
                self.load_reference_data(url)
            vacuum_and_analyze(args.database_url)
            self.maxima(f"{base_url}/v1/claims", f"{url}/v1/claims")
            self.drive(f"{url}/v1/claims")
        self.results["accumulators"] = check_accumulators(args.database_url)

    def maxima(self, baseline_url: str, url: str) -> None:
        """Baseline and service maxima in alternating rounds of about 5 s, so that a change in the
        machine's other load between the two cannot skew their ratio; each at the number of
        connections where it went fastest in a short probe (or --connections)."""
        args = self.args
        rounds = max(1, round(args.duration / 5))
        seconds = args.duration / rounds
        echoed = self.mixed_file("baseline", args.duration + 2 * args.warmup, 10_000)  # replays are fine
        wrk(baseline_url, echoed, 16, args.warmup)
        wrk(url, self.mixed_file("warmup", args.warmup), 16, args.warmup)
        analyze(args.database_url)
        base_conns = args.connections or self.best_connections(
            "baseline", lambda c: wrk(baseline_url, echoed, c, 3)
        )
        conns = args.connections or self.best_connections(
            "service", lambda c: wrk(url, self.mixed_file(f"probe{c}", 3), c, 3)
        )
        say(f"maximum throughput, alternating: {rounds} rounds of {seconds:.0f} s each...")
        base, claims = [], []
        for i in range(rounds):
            base.append(measured(partial(wrk, baseline_url, echoed, base_conns, seconds), self.baseline_pid))
            claims_file = self.mixed_file(f"max{i}", seconds)
            claims.append(measured(partial(wrk, url, claims_file, conns, seconds), self.service_pid))
        baseline, peak = self.results["baseline"], self.results["max"] = combined(base), combined(claims)
        baseline["connections"], peak["connections"] = base_conns, conns
        say(f"  baseline {baseline['rate']} requests/s, claims {peak['rate']}/s, {peak['errors']} errors")

    def best_connections(self, name: str, probe: Callable[[int], Json]) -> int:
        rates = {c: probe(c)["rate"] for c in PROBE_CONNECTIONS}
        best = max(rates, key=lambda c: rates[c])
        say(f"  {name}: requests/s by connections {rates}: {best}")
        return best

    def load_reference_data(self, url: str) -> None:
        say("loading reference data through the API:")
        started = time.perf_counter()
        asyncio.run(refdata.load(url, API_KEY, self.ds, self.args.load_concurrency, say))
        self.results["load_seconds"] = round(time.perf_counter() - started, 1)

    def drive(self, url: str) -> None:
        args = self.args
        peak = self.results["max"]
        rate = round(0.7 * peak["rate"], 1)
        say(f"paced at 70% of the maximum: {rate} claims/s (load.py, open loop)...")
        paced_file = self.mixed_file("paced", args.duration, rate)
        base_url = url.removesuffix("/v1/claims")
        before = batch_histograms(base_url)
        self.results["paced"] = load_process("paced", url, args.duration, paced_file, rate=rate)
        self.results["paced"]["batches"] = batches_between(before, batch_histograms(base_url))

        say("1 line vs 50 lines per claim, alternating, one at a time...")
        count = int(args.duration * 200)
        one = self.claims_file("lines1", workload.fixed_lines(self.maker("lines1"), count, 1))
        fifty = self.claims_file("lines50", workload.fixed_lines(self.maker("lines50"), count, 50))
        self.results["lines"] = load_process("alternate", url, args.duration, one, fifty)

        say(f"2,000-rate vs {args.big_rates:,}-rate fee schedules, alternating, one at a time...")
        small, big = workload.schedule_pairs(self.ds, count, SEED, f"{self.run_id}-sched")
        files = self.claims_file("small", small), self.claims_file("big", big)
        self.results["schedules"] = load_process("alternate", url, args.duration, *files)


def combined(rounds: list[Json]) -> Json:
    """Rounds of one wrk phase as one: summed counts; each latency figure the median round's."""
    requests = sum(r["requests"] for r in rounds)
    seconds = sum(r["seconds"] for r in rounds)
    return {
        "requests": requests,
        "seconds": round(seconds, 2),
        "rate": round(requests / seconds, 1),
        "errors": sum(r["errors"] for r in rounds),
        "latency_ms": {
            k: round(statistics.median(r["latency_ms"][k] for r in rounds), 2)
            for k in rounds[0]["latency_ms"]
        },
        "cpu_ms_per_request": {
            k: round(sum(r["cpu_ms_per_request"][k] * r["requests"] for r in rounds) / max(1, requests), 2)
            for k in ("server", "postgres")
        },
        "rounds": rounds,
    }


def targets(results: Json) -> list[tuple[str, bool, str]]:
    base, peak, paced = results["baseline"], results["max"], results["paced"]
    ratio = peak["rate"] / base["rate"]
    errors = peak["errors"] + paced["errors"] + results["lines"]["errors"] + results["schedules"]["errors"]
    p99 = paced["latency_ms"]["p99"]
    small = results["schedules"]["a_latency_ms"]["p50"]
    big = results["schedules"]["b_latency_ms"]["p50"]
    acc = results["accumulators"]
    return [
        ("claims/s >= 0.20x baseline", ratio >= 0.20, f"{ratio:.3f}x ({peak['rate']} / {base['rate']})"),
        ("zero errors", errors == 0, f"{errors} errors"),
        ("p99 <= 50 ms at 70% of max", p99 <= 50, f"p99 {p99} ms at {paced['target_rate']} claims/s"),
        (
            "big schedules within 10%",
            big <= small * 1.10,
            f"p50 {big} ms vs {small} ms ({big / small - 1:+.1%})",
        ),
        (
            "accumulators = sums over EOBs",
            acc["ok"],
            f"{acc['buckets']} buckets, {acc['mismatch_vs_lines']} mismatches,"
            f" {acc['member_copies_mismatched']} member ids unlike their claim's",
        ),
    ]


def error_kinds(results: Json) -> dict[str, dict[str, int]]:
    """Each phase's failed outcomes (status codes, or the client's exception names), by phase."""
    found = {}
    for phase in ("max", "paced", "lines", "schedules"):
        result = results[phase]
        if phase == "max":
            outcomes = {}
            for r in result["rounds"]:
                for kind, n in r["error_kinds"].items():
                    if n:
                        outcomes[kind] = outcomes.get(kind, 0) + n
        else:
            outcomes = {k: n for k, n in result["statuses"].items() if k != "201"}
            unanswered = result.get("sent", 0) - sum(result["statuses"].values())
            if unanswered > 0:
                outcomes["unanswered"] = unanswered
        if outcomes:
            found[phase] = outcomes
    return found


def report(results: Json) -> bool:
    m = results["machine"]
    lat = "p50 {p50} / p95 {p95} / p99 {p99} ms"
    base, peak, paced = results["baseline"], results["max"], results["paced"]
    lines, sched = results["lines"], results["schedules"]
    print(f"\nmachine: {m['cores']} cores, {m['cpu']}, {m['ram_gib']} GiB RAM, Python {m['python']}")
    if "load_seconds" in results:
        print(f"reference data loaded through the API in {results['load_seconds']} s")
    conns = "{connections} connections, "
    print(
        f"baseline (parse + echo): {base['rate']} req/s, "
        + (conns + lat).format(**base, **base["latency_ms"])
    )
    print(
        f"claims, max throughput:  {peak['rate']} claims/s, "
        + (conns + lat).format(**peak, **peak["latency_ms"])
    )
    cpu = "{server} ms in the server's processes, {postgres} ms in PostgreSQL"
    print("CPU per request at the maxima:")
    print("  baseline: " + cpu.format(**base["cpu_ms_per_request"]))
    print("  claims:   " + cpu.format(**peak["cpu_ms_per_request"]))
    print(f"claims at 70% ({paced['target_rate']}/s, open loop): " + lat.format(**paced["latency_ms"]))
    seconds = paced.get("per_second", [])
    print("  p99 by second (ms): " + " ".join(f"{s['p99']:.0f}" for s in seconds if s["count"]))
    if batches := paced.get("batches"):
        longer = ", ".join(f"{ms} ms: {n:,}" for ms, n in batches["longer_than_ms"].items())
        print(
            f"  batches (group commit): {batches['batches']:,}, {batches['mean_claims']} claims on"
            f" average; lasting longer than {longer}"
        )
    print("one claim at a time (alternating series):")
    print("  1 line:             " + lat.format(**lines["a_latency_ms"]))
    print("  50 lines:           " + lat.format(**lines["b_latency_ms"]))
    print("  2,000-rate FS:      " + lat.format(**sched["a_latency_ms"]))
    print(f"  {results['args']['big_rates']:,}-rate FS: " + lat.format(**sched["b_latency_ms"]))
    print(f"claims stored by status: {results['accumulators']['claims_by_status']}")
    for phase, outcomes in error_kinds(results).items():
        print(f"errors in {phase}: {outcomes}")
    print("\ntargets:")
    checks = targets(results)
    for name, ok, detail in checks:
        print(f"  [{'PASS' if ok else 'FAIL'}] {name}: {detail}")
    return all(ok for _, ok, _ in checks)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=float, default=20, help="seconds per measured phase (default 20)")
    parser.add_argument("--warmup", type=float, default=5, help="seconds of warm-up before each maximum")
    parser.add_argument("--workers", type=int, default=len(os.sched_getaffinity(0)), help="default: cores")
    parser.add_argument(
        "--connections", type=int, help="wrk connections for the maxima (default: the fastest of a probe)"
    )
    parser.add_argument(
        "--database-url",
        default=os.environ.get("CLAIMS_BENCH_DATABASE_URL", DEFAULT_DATABASE_URL),
        help="PostgreSQL database the benchmark owns (EMPTIED on every run unless --reuse-data)",
    )
    parser.add_argument("--reuse-data", action="store_true", help="keep the reference data if already loaded")
    parser.add_argument("--big-rates", type=int, default=1_000_000, help="rates per big fee schedule")
    parser.add_argument("--load-concurrency", type=int, default=16, help="parallel requests while loading")
    parser.add_argument("--json", type=Path, help="also write the results here as JSON")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        parser.error("wrk not found: apt-get install -y wrk")

    tmp = Path(tempfile.mkdtemp(prefix="claims-bench-"))
    run = Run(args, tmp)
    try:
        run.run()
    except Exception:
        say(f"benchmark failed; server logs kept in {tmp}")
        raise
    passed = report(run.results)
    if args.json:
        args.json.write_text(json.dumps(run.results, indent=2, default=str) + "\n")
    if passed:
        shutil.rmtree(tmp)
    else:
        say(f"server logs kept in {tmp}")
    return 0 if passed else 1


if __name__ == "__main__":
    raise SystemExit(main())
