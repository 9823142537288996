"""The benchmark's Python load process, for the two phases wrk cannot do well.

- `paced`: an open-loop load at a fixed rate. Request i is due at start + i/rate; its latency is
  measured from when it was DUE, not from when it was sent, so a slow server cannot hide its
  queueing by slowing the client down (no coordinated omission).
- `alternate`: two claim files, one request at a time, A, B, A, B... Alternating cancels drift in
  machine load between the two series, so their latencies can be compared within a few percent.

Prints one JSON object on stdout. Runs for a bounded time and stops by itself.

The paced phase shares two cores with the server it measures, so its client must cost little:
aiohttp spent about 0.2 ms of CPU per request, an eighth of the machine at 1,000 requests/s.
`LeanClient` writes each request's prepared bytes on a kept-alive connection and parses the
answer with httptools (uvicorn's HTTP parser): about a third of that.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import statistics
import sys
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import httptools

Json = dict[str, Any]
DRAIN_SECONDS = 15.0  # how long in-flight requests of a paced run may still take after the end
# A kept-alive connection idle for longer is closed instead of reused: uvicorn closes idle
# connections after 5 s, and a request written as the server closes is lost (ConnectionLost),
# so clients retire theirs first, as connection pools do.
RETIRE_IDLE_SECONDS = 2.0
_PER_SECOND = ("count", "p99", "max")


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


class _Connection(asyncio.Protocol):
    """One kept-alive HTTP/1.1 connection: one request at a time, answer parsed by httptools."""

    def __init__(self, client: LeanClient) -> None:
        self.client = client
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.on_answer: Callable[[str], None] | None = None
        self.idle_since = 0.0
        self.retired = False  # closed by the client for idleness, already counted out

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def send(self, request: bytes, on_answer: Callable[[str], None]) -> None:
        self.on_answer = on_answer
        assert self.transport is not None
        self.transport.write(request)

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self._answer("HttpParserError")

    def on_message_complete(self) -> None:
        self._answer(str(self.parser.get_status_code()))

    def connection_lost(self, exc: Exception | None) -> None:
        self.client.lost(self)
        if self.on_answer is not None:
            self._answer("ConnectionLost")

    def _answer(self, outcome: str) -> None:
        on_answer, self.on_answer = self.on_answer, None
        if on_answer is not None:
            self.client.released(self)
            on_answer(outcome)


class LeanClient:
    """POSTs to one URL over up to `connections` kept-alive connections; a request that finds
    none idle waits for one (its latency, measured by the caller from when it was due, includes
    the wait)."""

    def __init__(self, url: str, api_key: str, connections: int) -> None:
        parsed = urllib.parse.urlsplit(url)
        self.host, self.port = parsed.hostname or "127.0.0.1", parsed.port or 80
        self.head = (
            f"POST {parsed.path} HTTP/1.1\r\nHost: {parsed.netloc}\r\n"
            f"Authorization: Bearer {api_key}\r\nContent-Type: application/json\r\n"
        ).encode()
        self.limit = connections
        self.idle: list[_Connection] = []
        self.opened = 0
        self.queued: collections.deque[tuple[bytes, Callable[[str], None]]] = collections.deque()
        self.statuses: dict[str, int] = {}

    def request(self, body: str) -> bytes:
        data = body.encode()
        return self.head + f"Content-Length: {len(data)}\r\n\r\n".encode() + data

    def send(self, request: bytes, on_answer: Callable[[str], None]) -> None:
        def counted(outcome: str) -> None:
            self.statuses[outcome] = self.statuses.get(outcome, 0) + 1
            on_answer(outcome)

        stale = time.monotonic() - RETIRE_IDLE_SECONDS
        while self.idle:
            connection = self.idle.pop()
            if connection.transport is None or connection.transport.is_closing():
                # Closed by the server while idle, its connection_lost not yet delivered:
                # skipped (lost() still counts it out of `opened`).
                continue
            if connection.idle_since < stale:
                connection.retired = True
                self.opened -= 1
                connection.transport.close()
                continue
            connection.send(request, counted)
            return
        if self.opened < self.limit:
            self._open(request, counted)
        else:
            self.queued.append((request, counted))

    def _open(self, request: bytes, on_answer: Callable[[str], None]) -> None:
        """A new connection, counted in `opened` at once, for this request."""
        self.opened += 1
        asyncio.get_running_loop().create_task(self._connect_and_send(request, on_answer))

    async def _connect_and_send(self, request: bytes, on_answer: Callable[[str], None]) -> None:
        loop = asyncio.get_running_loop()
        try:
            _, connection = await loop.create_connection(lambda: _Connection(self), self.host, self.port)
        except OSError as exc:
            self.opened -= 1
            on_answer(type(exc).__name__)
            return
        connection.send(request, on_answer)

    def released(self, connection: _Connection) -> None:
        if self.queued:
            request, on_answer = self.queued.popleft()
            asyncio.get_running_loop().call_soon(connection.send, request, on_answer)
        else:
            connection.idle_since = time.monotonic()
            self.idle.append(connection)

    def lost(self, connection: _Connection) -> None:
        if connection.retired:
            return
        self.opened -= 1
        if connection in self.idle:
            self.idle.remove(connection)
        if self.queued and self.opened < self.limit:  # a request waits for a connection: open one
            self._open(*self.queued.popleft())

    async def post(self, body: str) -> str:
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self.send(self.request(body), future.set_result)
        return await future

    @property
    def errors(self) -> int:
        return sum(n for outcome, n in self.statuses.items() if outcome != "201")

    def close(self) -> None:
        for connection in self.idle:
            if connection.transport is not None:
                connection.transport.close()


async def paced(client: LeanClient, bodies: list[str], rate: float, duration: float) -> Json:
    latencies: list[float] = []
    by_second: dict[int, list[float]] = collections.defaultdict(list)  # by when the request was due
    total = min(len(bodies), int(rate * duration))
    requests = [client.request(body) for body in bodies[:total]]
    answered = 0
    all_answered = asyncio.get_running_loop().create_future()

    def on_answer(due: float) -> Callable[[str], None]:
        def record(outcome: str) -> None:
            nonlocal answered
            if outcome == "201":
                latency = time.perf_counter() - due
                latencies.append(latency)
                by_second[int(due - start)].append(latency)
            answered += 1
            if answered == total and not all_answered.done():
                all_answered.set_result(None)

        return record

    # perf_counter, not loop.time(): uvloop's clock has millisecond resolution and is read once
    # per loop iteration.
    start = time.perf_counter() + 0.05
    for i in range(total):
        due = start + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        client.send(requests[i], on_answer(due))
    sent_in = time.perf_counter() - start
    if total:
        await asyncio.wait([all_answered], timeout=DRAIN_SECONDS)
    client.close()
    return {
        "mode": "paced",
        "target_rate": rate,
        "sent": total,
        "send_rate": round(total / sent_in, 1),
        "statuses": client.statuses,
        "errors": client.errors + (total - answered),
        "latency_ms": percentiles(latencies),
        # Whether the tail is spread over the run (the server near saturation) or comes from a
        # few seconds (a stall: a checkpoint, another process): p99 and max of each second.
        "per_second": [
            {"second": second, **{k: v for k, v in percentiles(values).items() if k in _PER_SECOND}}
            for second, values in sorted(by_second.items())
        ],
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
    if args.mode == "paced":
        client = LeanClient(args.url, args.api_key, args.connections)
        return await paced(client, read_bodies(args.claims), args.rate, args.duration)
    headers = {"Authorization": f"Bearer {args.api_key}", "Content-Type": "application/json"}
    connector = aiohttp.TCPConnector(limit=args.connections)
    timeout = aiohttp.ClientTimeout(total=args.timeout)
    async with aiohttp.ClientSession(headers=headers, connector=connector, timeout=timeout) as session:
        poster = Poster(session, args.url)
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
    parser.add_argument("--connections", type=int, default=256, help="at most (paced mode)")
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
