"""Fee-schedule ingest benchmark (issue 5): a script, not a timed test.

    python bench/ingest_bench.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/h3 \\
        [--csv-rows 1000000] [--tic-sizes 100,1000] [--workdir /tmp/ingest-bench]

THE DATABASE IS WIPED and migrated afresh. Measured in one run, on the same table:

- CSV: a 1,000,000-row upload through HTTP (PUT /v1/fee-schedules/{code}/rates on a real uvicorn
  server) against a raw COPY of the same rows into fee_schedule_rates (payload prepared before
  the clock starts). Target: ingest >= 0.5x the raw COPY's rows/s.
- TiC: `claims-service import-tic` of generated files (one per --tic-sizes, in MB) in a child
  process, against a raw COPY of the rate rows that import produced (into fresh fee schedules).
  Target: >= 0.25x. The child's peak RSS (its ru_maxrss): <= 256 MiB, and the largest file's
  within 10% of the smallest's.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import multiprocessing
import os
import resource
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from service.db.migrate import upgrade  # noqa: E402
from service.db.session import create_db_engine  # noqa: E402
from service.settings import Settings  # noqa: E402

ADMIN_KEY = "ingest-bench-admin"
# The TiC import runs in a process forked from a fork server started while this script was still
# small, so the child's ru_maxrss is the import's own peak (a child spawned later by vfork + exec
# would inherit this process's high-water mark, payloads and all).
FORKSERVER = multiprocessing.get_context("forkserver")
MIB = 1024 * 1024


@dataclass
class Figures:
    rows: int
    seconds: float

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def libpq_url(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def reset_database(url: str) -> None:
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        conn.execute("DROP SCHEMA public CASCADE")
        conn.execute("CREATE SCHEMA public")
    engine = create_db_engine(Settings(database_url=url))
    upgrade(engine)
    engine.dispose()


def generate(args: argparse.Namespace, kind: str, out: Path, *flags: str) -> Path:
    if not out.exists():
        say(f"generating {out} ...")
        partial = out.with_suffix(".partial")  # a failed run never leaves a file to reuse
        subprocess.run(
            [sys.executable, str(REPO / "bench" / "gen_data.py"), kind, str(partial), *flags], check=True
        )
        partial.rename(out)
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def server(url: str, port: int, log: Path) -> Any:
    env = {**os.environ, "CLAIMS_DATABASE_URL": url, "CLAIMS_API_KEYS": json.dumps({ADMIN_KEY: ["admin"]})}
    command = [sys.executable, "-m", "service.cli", "serve", "--port", str(port), "--no-migrate"]
    with log.open("w") as log_file:
        process = subprocess.Popen(command, cwd=REPO, env=env, stdout=log_file, stderr=subprocess.STDOUT)
        try:
            base = f"http://127.0.0.1:{port}"
            for _ in range(100):
                try:
                    if httpx.get(f"{base}/healthz").status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.1)
            yield process
        finally:
            process.terminate()
            process.wait(timeout=10)


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def file_pieces(path: Path, size: int = 1 << 20) -> Any:
    with path.open("rb") as f:
        while piece := f.read(size):
            yield piece


def bench_csv(args: argparse.Namespace, url: str) -> dict[str, Any]:
    csv_file = generate(
        args, "csv", args.workdir / f"rates-{args.csv_rows}.csv", "--rows", str(args.csv_rows)
    )
    port = free_port()
    with server(url, port, args.workdir / "server.log") as process:
        client = httpx.Client(
            base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {ADMIN_KEY}"}, timeout=600
        )
        for code in ("BENCH-CSV", "BENCH-COPY"):
            client.post(
                "/v1/fee-schedules", json={"code": code, "name": code, "rates": []}
            ).raise_for_status()
        say(f"CSV: uploading {args.csv_rows:,} rows through HTTP ...")
        started = time.perf_counter()
        response = client.put(
            "/v1/fee-schedules/BENCH-CSV/rates",
            content=file_pieces(csv_file),
            headers={"Content-Type": "text/csv"},
        )
        ingest = Figures(args.csv_rows, time.perf_counter() - started)
        response.raise_for_status()
        assert response.json()["rate_count"] == args.csv_rows, response.text
        server_rss = peak_rss_mib(process.pid)
    with psycopg.connect(libpq_url(url)) as conn:
        found = conn.execute("SELECT id FROM fee_schedules WHERE code = 'BENCH-COPY'").fetchone()
        assert found is not None
        schedule_id = found[0]
        payload = io.BytesIO()
        with csv_file.open() as f:
            next(f)
            for line in f:
                code, modifier, amount = line.rstrip("\n").split(",")
                payload.write(f"{schedule_id}\t{code}\t{modifier}\t{amount}\n".encode())
        say("CSV: raw COPY of the same rows ...")
        copy = raw_copy(conn, payload.getvalue(), "fee_schedule_id, procedure_code, modifier, allowed_amount")
    return {
        "rows": args.csv_rows,
        "file_mb": round(csv_file.stat().st_size / 1e6, 1),
        "ingest_seconds": round(ingest.seconds, 2),
        "ingest_rows_per_second": round(ingest.rows_per_second),
        "raw_copy_seconds": round(copy.seconds, 2),
        "raw_copy_rows_per_second": round(copy.rows_per_second),
        "ratio": round(ingest.rows_per_second / copy.rows_per_second, 3),
        "server_peak_rss_mib": round(server_rss, 1),
    }


def raw_copy(conn: psycopg.Connection, payload: bytes, columns: str) -> Figures:
    rows = payload.count(b"\n")
    started = time.perf_counter()
    with conn.cursor() as cur, cur.copy(f"COPY fee_schedule_rates ({columns}) FROM STDIN") as copy:
        for start in range(0, len(payload), 1 << 20):
            copy.write(payload[start : start + (1 << 20)])
    conn.commit()
    return Figures(rows, time.perf_counter() - started)


def bench_tic(args: argparse.Namespace, url: str, size_mb: int) -> dict[str, Any]:
    tic_file = generate(args, "tic", args.workdir / f"tic-{size_mb}mb.json", "--size-mb", str(size_mb))
    network = f"BENCH-{size_mb}"
    with psycopg.connect(libpq_url(url)) as conn:
        conn.execute("INSERT INTO networks (code, name) VALUES (%s, %s)", (network, network))
        conn.commit()
    say(f"TiC: import-tic of {tic_file.stat().st_size / 1e6:,.0f} MB in a child process ...")
    receiver, sender = FORKSERVER.Pipe(duplex=False)
    argv = ["import-tic", network, str(tic_file), "--quiet"]
    started = time.perf_counter()
    child = FORKSERVER.Process(target=run_import, args=(argv, url, sender))
    child.start()
    outcome = receiver.recv()
    child.join()
    seconds = time.perf_counter() - started
    if outcome["status"] != 0:
        raise SystemExit(f"import-tic failed: {outcome}")
    report = json.loads(outcome["stdout"])
    with psycopg.connect(libpq_url(url)) as conn:
        payload = produced_rows(conn, network)
        say(f"TiC: raw COPY of the {report['rates']:,} rows it produced ...")
        copy = raw_copy(
            conn, payload, "fee_schedule_id, procedure_code, modifier, allowed_amount, percent_of_billed"
        )
    ingest = Figures(report["rates"], seconds)
    return {
        "file_mb": round(tic_file.stat().st_size / 1e6, 1),
        "rows": report["rates"],
        "fee_schedules": report["fee_schedules"],
        "providers": report["providers_created"]
        + report["providers_updated"]
        + report["providers_unchanged"],
        "skipped": report["skipped"],
        "ingest_seconds": round(seconds, 2),
        "ingest_rows_per_second": round(ingest.rows_per_second),
        "raw_copy_seconds": round(copy.seconds, 2),
        "raw_copy_rows_per_second": round(copy.rows_per_second),
        "ratio": round(ingest.rows_per_second / copy.rows_per_second, 3),
        "peak_rss_mib": round(outcome["ru_maxrss_kib"] / 1024, 1),  # Linux reports KiB
    }


def run_import(argv: list[str], url: str, results: Any) -> None:
    """In the forked child: the CLI import, its stdout and its peak RSS."""
    os.environ["CLAIMS_DATABASE_URL"] = url
    from service.cli import main as cli

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        status = cli(argv)
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    results.send({"status": status, "stdout": out.getvalue(), "ru_maxrss_kib": maxrss})


def _start_fork_server() -> None:
    child = FORKSERVER.Process(target=time.sleep, args=(0,))
    child.start()
    child.join()


def produced_rows(conn: psycopg.Connection, network: str) -> bytes:
    """The network's rate rows as a COPY payload aimed at fresh copies of its fee schedules."""
    schedules = conn.execute(
        "SELECT DISTINCT c.fee_schedule_id FROM contracts c JOIN networks n ON n.id = c.network_id "
        "WHERE n.code = %s",
        (network,),
    ).fetchall()
    fresh: dict[int, int] = {}
    for (schedule_id,) in schedules:
        row = conn.execute(
            "INSERT INTO fee_schedules (code, name) VALUES (%s, %s) RETURNING id",
            (f"COPY-{schedule_id}", f"raw COPY of {schedule_id}"),
        ).fetchone()
        assert row is not None
        fresh[schedule_id] = row[0]
    conn.commit()
    out = io.BytesIO()
    with conn.cursor() as cur:
        query = (
            "COPY (SELECT fee_schedule_id, procedure_code, modifier, allowed_amount, percent_of_billed "
            f"FROM fee_schedule_rates WHERE fee_schedule_id IN ({','.join(map(str, fresh)) or 'NULL'})) "
            "TO STDOUT"
        )
        with cur.copy(query) as copy:
            for data in copy:
                out.write(data)
    lines = out.getvalue().split(b"\n")
    remapped = []
    for line in lines:
        if line:
            schedule_id, rest = line.split(b"\t", 1)
            remapped.append(b"%d\t%s\n" % (fresh[int(schedule_id)], rest))
    return b"".join(remapped)


def verdicts(results: dict[str, Any]) -> list[tuple[str, bool, str]]:
    csv_ = results["csv"]
    tics = results["tic"]
    checks = [("CSV ingest >= 0.5x raw COPY", csv_["ratio"] >= 0.5, f"{csv_['ratio']:.2f}x")]
    for tic in tics:
        checks.append(
            (f"TiC {tic['file_mb']:.0f} MB >= 0.25x raw COPY", tic["ratio"] >= 0.25, f"{tic['ratio']:.2f}x")
        )
        checks.append(
            (
                f"TiC {tic['file_mb']:.0f} MB peak RSS <= 256 MiB",
                tic["peak_rss_mib"] <= 256,
                f"{tic['peak_rss_mib']} MiB",
            )
        )
    if len(tics) > 1:
        small, big = tics[0]["peak_rss_mib"], tics[-1]["peak_rss_mib"]
        checks.append(
            ("TiC peak RSS within 10% across sizes", big <= small * 1.10, f"{big / small - 1:+.1%}")
        )
    return checks


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database-url", required=True, help="a PostgreSQL database to WIPE and use")
    parser.add_argument("--csv-rows", type=int, default=1_000_000)
    parser.add_argument("--tic-sizes", default="100,1000", help="TiC file sizes in MB, comma-separated")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/ingest-bench"))
    args = parser.parse_args()
    if not args.database_url.startswith("postgresql"):
        raise SystemExit("the benchmark compares against PostgreSQL COPY: give a postgresql+psycopg:// URL")
    args.workdir.mkdir(parents=True, exist_ok=True)
    _start_fork_server()
    reset_database(args.database_url)
    results: dict[str, Any] = {"csv": bench_csv(args, args.database_url), "tic": []}
    for size in (int(s) for s in args.tic_sizes.split(",")):
        results["tic"].append(bench_tic(args, args.database_url, size))
    checks = verdicts(results)
    results["checks"] = [{"check": name, "ok": ok, "value": value} for name, ok, value in checks]
    (args.workdir / "results.json").write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))
    for name, ok, value in checks:
        say(f"{'PASS' if ok else 'FAIL'}  {name}: {value}")
    return 0 if all(ok for _, ok, _ in checks) else 1


if __name__ == "__main__":
    raise SystemExit(main())
