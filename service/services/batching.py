"""Group commit of claim submissions: concurrent POST /v1/claims requests share a transaction.

Why: a claim's own work is a few hundred microseconds of Python, but each transaction also pays
a pooled connection's checkout (and a liveness ping if it sat idle), a few round trips, a commit
(a WAL flush) and PostgreSQL's per-statement overhead (and, on SQLite, a trip to the
threadpool). Measured under load (docs/performance.md), that fixed part was most of a claim's
cost. Grouping the claims that arrive while a batch is in flight spreads it over the batch: at
low load a batch holds one claim and nothing waits; under load the batch grows and the cost per
claim falls.

What each request still gets, as with one transaction per request (docs/decisions.md):
- its response only after the transaction that stored its claim committed;
- all or nothing for its claim: a claim that fails alone (a conflict, an EOB that does not
  balance) is left out and the others commit; an error the database raises for the batch as a
  whole (a constraint, bad data) rolls it back and each claim is retried in a transaction of its
  own, so the error reaches the request that caused it; the database being unavailable fails
  every claim of the batch (503, retry);
- the same answer: a batch's claims have distinct members and distinct claim ids (a claim that
  would share either waits for the next batch), so no claim reads what another claim of its
  batch posts, and the members' locks are taken in one order (no deadlock between batches).

A claim that waited longer than `max_wait_seconds` (the statement timeout) for its batch to start
is refused with 503 instead: the database is not keeping up (stalled, or locked), and waiting for
each queued batch to time out in turn would hold every request for a multiple of the timeout.

State lives per event loop and only while requests wait: nothing is kept between batches.
"""

from __future__ import annotations

import asyncio
import contextvars
import enum
import time
import weakref
from collections.abc import Sequence

import psycopg
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from ..api.problems import ServiceUnavailable
from ..metrics import SUBMIT_BATCH_CLAIMS, SUBMIT_BATCH_DURATION
from .claims import ClaimToSubmit, EobResult, submit_claims

# Errors one claim can cause for its whole batch: worth retrying each claim alone.
_ONE_CLAIMS_FAULT = (sa_exc.IntegrityError, sa_exc.DataError, psycopg.IntegrityError, psycopg.DataError)

# A batch that failed on a lost connection within this time is run again once (see run()).
RETRY_WITHIN_SECONDS = 1.0

Outcome = EobResult | Exception
_Waiting = tuple[ClaimToSubmit, "asyncio.Future[EobResult]", float]  # and when it arrived (loop time)


class SubmitBatcher:
    """Submits claims in batches of up to `max_batch` (1: a transaction per claim).

    On PostgreSQL (`async_session_factory` given) a batch runs on the event loop: its statements
    are awaited on psycopg's async connection (SQLAlchemy runs the same synchronous code in a
    greenlet, which gives the loop back at every wait on the database), so a claim does not
    cross to a worker thread and back, nor contend for the GIL with the loop, and the loop keeps
    serving requests while the database works. On SQLite (no async driver) the batch runs in
    the threadpool. Measured through HTTP: the same CPU per claim, a higher maximum in two
    alternating pairs of three, latency below the maximum the same within the noise
    (docs/performance.md, eleventh round).
    """

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        max_batch: int,
        max_wait_seconds: float = 10.0,
        async_session_factory: async_sessionmaker[AsyncSession] | None = None,
    ) -> None:
        self._session_factory = session_factory
        self._async_session_factory = async_session_factory
        self._max_batch = max_batch
        self.max_wait_seconds = max_wait_seconds
        self._queues: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Queue] = (
            weakref.WeakKeyDictionary()
        )

    async def submit(self, item: ClaimToSubmit) -> EobResult:
        loop = asyncio.get_running_loop()
        queue = self._queues.get(loop)
        if queue is None:
            queue = self._queues[loop] = _Queue(self)
        return await queue.submit(item)

    def take(self, waiting: list[_Waiting]) -> tuple[list[_Waiting], list[_Waiting]]:
        """The next batch in arrival order, and the rest: distinct members and claim ids."""
        batch: list[_Waiting] = []
        rest: list[_Waiting] = []
        members: set[str] = set()
        claim_ids: set[str] = set()
        for entry in waiting:
            claim = entry[0].claim
            if (
                len(batch) < self._max_batch
                and claim.member_id not in members
                and claim.claim_id not in claim_ids
            ):
                batch.append(entry)
                members.add(claim.member_id)
                claim_ids.add(claim.claim_id)
            else:
                rest.append(entry)
        return batch, rest

    async def run_batch(self, batch: Sequence[ClaimToSubmit]) -> list[Outcome]:
        """One transaction for the batch: awaited on the loop, or in the threadpool (see above)."""
        if self._async_session_factory is None:
            return await run_in_threadpool(self.run, batch)
        return await self.run_async(batch)

    def run(self, batch: Sequence[ClaimToSubmit], *, retry_lost_connection: bool = True) -> list[Outcome]:
        """One transaction for the batch, in the calling thread; see the module docstring."""
        started = time.monotonic()
        try:
            with self._session_factory() as session, session.begin():
                outcomes = submit_claims(session, batch)
        except Exception as exc:
            match _after(exc, batch, started, retry_lost_connection):
                case _Next.EACH_ALONE:
                    return [self.run([item])[0] for item in batch]
                case _Next.AGAIN:
                    return self.run(batch, retry_lost_connection=False)
                case _:
                    return [exc] * len(batch)
        return _observed(outcomes, started)

    async def run_async(
        self, batch: Sequence[ClaimToSubmit], *, retry_lost_connection: bool = True
    ) -> list[Outcome]:
        """run(), on the event loop with the async session factory's connections."""
        assert self._async_session_factory is not None
        started = time.monotonic()
        try:
            async with self._async_session_factory() as session, session.begin():
                outcomes = await session.run_sync(submit_claims, batch)
        except Exception as exc:
            match _after(exc, batch, started, retry_lost_connection):
                case _Next.EACH_ALONE:
                    return [(await self.run_async([item]))[0] for item in batch]
                case _Next.AGAIN:
                    return await self.run_async(batch, retry_lost_connection=False)
                case _:
                    return [exc] * len(batch)
        return _observed(outcomes, started)


class _Next(enum.Enum):
    """What a failed batch does next."""

    EACH_ALONE = enum.auto()
    AGAIN = enum.auto()
    FAIL = enum.auto()


def _after(exc: Exception, batch: Sequence[ClaimToSubmit], started: float, retry: bool) -> _Next:
    if isinstance(exc, _ONE_CLAIMS_FAULT):
        # One claim's fault fails the whole batch: each claim alone, so the error reaches the
        # request that caused it.
        return _Next.EACH_ALONE if len(batch) > 1 else _Next.FAIL
    quick = time.monotonic() - started < RETRY_WITHIN_SECONDS
    if retry and quick and connection_lost(exc):
        # A pooled connection that died since its last use (db/session.py pings only idle
        # ones): nothing of the batch committed, so it runs again on a fresh one. Had it died
        # during COMMIT after the server committed, the retry finds the claims stored and
        # answers 200 with their EOBs, as a client's retry would (and the adjudication metrics
        # do not count them). Only a quick failure is retried: a connect timeout or a silent
        # network drop would make the request wait twice.
        return _Next.AGAIN
    return _Next.FAIL


def _observed(outcomes: list[Outcome], started: float) -> list[Outcome]:
    SUBMIT_BATCH_CLAIMS.observe(len(outcomes))
    SUBMIT_BATCH_DURATION.observe(time.monotonic() - started)
    return outcomes


def connection_lost(exc: BaseException) -> bool:
    """Whether the error says the database connection is gone (not a statement's failure)."""
    driver_error: BaseException | None = exc
    if isinstance(exc, sa_exc.DBAPIError):
        if exc.connection_invalidated:
            return True
        driver_error = exc.orig
    if isinstance(driver_error, psycopg.OperationalError):
        # No SQLSTATE: the client lost the connection; class 08: connection exception; 57P01-03:
        # the server was shut down or is restarting.
        state = driver_error.sqlstate
        return state is None or state.startswith("08") or state in {"57P01", "57P02", "57P03"}
    return False


class _Queue:
    """The claims waiting on one event loop, and whether a task is draining them."""

    def __init__(self, batcher: SubmitBatcher) -> None:
        self._batcher = batcher
        self._waiting: list[_Waiting] = []
        self._draining = False
        self._task: asyncio.Task[None] | None = None  # referenced, so it is not collected mid-run

    async def submit(self, item: ClaimToSubmit) -> EobResult:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[EobResult] = loop.create_future()
        self._waiting.append((item, future, loop.time()))
        if not self._draining:
            self._draining = True
            # A context of its own: the draining task must not carry this request's id into logs.
            self._task = loop.create_task(self._drain(), context=contextvars.Context())
        # A request cancelled while waiting (its client left) still has its claim submitted,
        # as a request whose client leaves after the commit does.
        return await future

    async def _drain(self) -> None:
        batch: list[_Waiting] = []
        try:
            while self._waiting:
                self._refuse_overdue()
                batch, self._waiting = self._batcher.take(self._waiting)
                if not batch:
                    break
                outcomes = await self._batcher.run_batch([entry[0] for entry in batch])
                for (_, future, _), outcome in zip(batch, outcomes, strict=True):
                    if future.done():
                        continue
                    if isinstance(outcome, Exception):
                        future.set_exception(outcome)
                    else:
                        future.set_result(outcome)
                batch = []
        except BaseException as exc:  # the loop is shutting down: nobody may wait forever
            for _, future, _ in batch + self._waiting:
                if not future.done():
                    future.set_exception(exc if isinstance(exc, Exception) else RuntimeError("shutting down"))
            self._waiting = []
            raise
        finally:
            self._draining = False

    def _refuse_overdue(self) -> None:
        deadline = asyncio.get_running_loop().time() - self._batcher.max_wait_seconds
        overdue = [entry for entry in self._waiting if entry[2] < deadline]
        if not overdue:
            return
        self._waiting = [entry for entry in self._waiting if entry[2] >= deadline]
        for _, future, _ in overdue:
            if not future.done():
                future.set_exception(ServiceUnavailable("the database is not keeping up; retry later"))
