"""The benchmark's Python load process (aiohttp), for the two phases wrk cannot do well.

- `paced`: an open-loop load at a fixed rate. Request i is due at start + i/rate; its latency is
  measured from when it was DUE, not from when it was sent, so a slow server cannot hide its
  queueing by slowing the client down (no coordinated omission).
- `alternate`: two claim files, one request at a time, A, B, A, B... Alternating cancels drift in
  machine load between the two series, so their latencies can be compared within a few percent.

Prints one JSON object on stdout. Runs for a bounded time and stops by itself.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp

Json = dict[str, Any]
DRAIN_SECONDS = 15.0  # how long in-flight requests of a paced run may still take after the end


def percentiles(latencies: list[float]) -> Json:
    """p50/p95/p99 (nearest rank), mean and max, in milliseconds."""
    if not latencies:
        return {"count": 0}
    ordered = sorted(latencies)

    def rank(p: float) -> float:
        return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]

    return {
        "count": len(ordered),
        "mean": round(statistics.fmean(ordered) * 1000, 2),
        "p50": round(rank(50) * 1000, 2),
        "p95": round(rank(95) * 1000, 2),
        "p99": round(rank(99) * 1000, 2),
        "max": round(ordered[-1] * 1000, 2),
    }


class Poster:
    def __init__(self, session: aiohttp.ClientSession, url: str) -> None:
        self.session = session
        self.url = url
        self.statuses: dict[str, int] = {}

    async def post(self, body: str) -> bool:
        """POST one claim; True when it was adjudicated (201). Counts every outcome."""
        try:
            async with self.session.post(self.url, data=body) as response:
                await response.read()
                outcome = str(response.status)
        except (aiohttp.ClientError, TimeoutError) as exc:
            outcome = type(exc).__name__
        self.statuses[outcome] = self.statuses.get(outcome, 0) + 1
        return outcome == "201"

    @property
    def errors(self) -> int:
        return sum(n for outcome, n in self.statuses.items() if outcome != "201")


async def paced(poster: Poster, bodies: list[str], rate: float, duration: float) -> Json:
    latencies: list[float] = []
    tasks: set[asyncio.Task[None]] = set()
    total = min(len(bodies), int(rate * duration))

    async def one(body: str, due: float) -> None:
        if await poster.post(body):
            latencies.append(time.perf_counter() - due)

    # perf_counter, not loop.time(): uvloop's clock has millisecond resolution and is read once
    # per loop iteration.
    start = time.perf_counter() + 0.05
    for i in range(total):
        due = start + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        task = asyncio.create_task(one(bodies[i], due))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    sent_in = time.perf_counter() - start
    if tasks:
        await asyncio.wait(tasks, timeout=DRAIN_SECONDS)
    return {
        "mode": "paced",
        "target_rate": rate,
        "sent": total,
        "send_rate": round(total / sent_in, 1),
        "statuses": poster.statuses,
        "errors": poster.errors + len(tasks),
        "latency_ms": percentiles(latencies),
    }


async def alternate(poster: Poster, a: list[str], b: list[str], duration: float) -> Json:
    series: tuple[list[float], list[float]] = ([], [])
    deadline = time.perf_counter() + duration
    for body_a, body_b in zip(a, b, strict=False):
        if time.perf_counter() > deadline:
            break
        for body, latencies in ((body_a, series[0]), (body_b, series[1])):
            began = time.perf_counter()
            if await poster.post(body):
                latencies.append(time.perf_counter() - began)
    return {
        "mode": "alternate",
        "statuses": poster.statuses,
        "errors": poster.errors,
        "a_latency_ms": percentiles(series[0]),
        "b_latency_ms": percentiles(series[1]),
    }


def read_bodies(path: str) -> list[str]:
    return Path(path).read_text().splitlines()


async def main_async(args: argparse.Namespace) -> Json:
    headers = {"Authorization": f"Bearer {args.api_key}", "Content-Type": "application/json"}
    connector = aiohttp.TCPConnector(limit=args.connections)
    timeout = aiohttp.ClientTimeout(total=args.timeout)
    async with aiohttp.ClientSession(headers=headers, connector=connector, timeout=timeout) as session:
        poster = Poster(session, args.url)
        if args.mode == "paced":
            return await paced(poster, read_bodies(args.claims), args.rate, args.duration)
        return await alternate(poster, read_bodies(args.claims), read_bodies(args.claims_b), args.duration)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("mode", choices=["paced", "alternate"])
    parser.add_argument("--url", required=True, help="e.g. http://127.0.0.1:8000/v1/claims")
    parser.add_argument("--api-key", required=True)
    parser.add_argument("--claims", required=True, help="file of JSON bodies, one per line (A series)")
    parser.add_argument("--claims-b", help="the B series (alternate mode)")
    parser.add_argument("--duration", type=float, required=True, help="seconds")
    parser.add_argument("--rate", type=float, help="requests per second (paced mode)")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--timeout", type=float, default=10.0, help="per request, seconds")
    args = parser.parse_args()
    if (args.mode == "paced") != (args.rate is not None) or (args.mode == "alternate") != bool(args.claims_b):
        parser.error("paced needs --rate; alternate needs --claims-b")
    try:
        import uvloop
    except ImportError:  # plain asyncio works, a little slower
        result = asyncio.run(main_async(args))
    else:
        result = uvloop.run(main_async(args))
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
