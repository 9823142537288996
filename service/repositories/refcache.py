"""Per-process caches of reference data that rarely changes, for the claims hot path.

Safe to lose (a miss costs one query) and never stale:
- plans by id: a plan cannot change once created (the API has no update and imports never touch
  plans), so one id names one definition for the life of the database;
- fee-schedule rates by (fee_schedule_id, rates_version, procedure_code), for out-of-network
  lines priced on the plan's reference schedule (an in-network claim reads its contract's rates
  joined with the contract, and a protected line's QPA reads every network schedule's rates with
  the network's contracts; on PostgreSQL the batch reads the reference rates with the contracts
  too, context.py and claims_pg.py): replacing a schedule's rates bumps its rates_version in the
  same transaction, and every claim reads the versions of its schedules from the database in its
  own transaction, so replicas that each keep their own cache all price with the rates committed
  now. Only codes that claims use are cached, in a bounded LRU, so memory stays flat however
  many rates a schedule has.

A cache belongs to one Engine (one database), or to the engines share_cache joins: an
application, or a test, that builds a new engine starts with empty caches.
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from ..domain.model import Plan, Rate, RateKey
from ..domain.records import record

K = TypeVar("K")
V = TypeVar("V")

PLAN_CAPACITY = 1_000
RATE_CAPACITY = 50_000  # (schedule, version, code) entries: a few MB


class Lru(Generic[K, V]):
    """A thread-safe least-recently-used map with a fixed capacity."""

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._data: OrderedDict[K, V] = OrderedDict()
        self._lock = threading.Lock()

    def get_many(self, keys: Iterable[K]) -> dict[K, V]:
        found: dict[K, V] = {}
        with self._lock:
            for key in keys:
                value = self._data.get(key)
                if value is not None:
                    self._data.move_to_end(key)
                    found[key] = value
        return found

    def put_many(self, items: Mapping[K, V]) -> None:
        with self._lock:
            self._data.update(items)
            for key in items:
                self._data.move_to_end(key)
            while len(self._data) > self._capacity:
                self._data.popitem(last=False)

    def __len__(self) -> int:
        return len(self._data)


@record
class CachedPlan:
    """A plan as the core sees it, minus the reference rates (those depend on the claim's codes).

    `oon_schedule` is the (id, code) of the out-of-network reference schedule, if the plan has one.
    """

    plan: Plan
    oon_schedule: tuple[int, str] | None


# The rates of one procedure code in one version of one schedule, every modifier.
RateKeyTuple = tuple[int, int, str]  # (fee_schedule_id, rates_version, procedure_code)
CodeRates = Mapping[RateKey, Rate]


@dataclass
class ReferenceCache:
    plans: Lru[int, CachedPlan] = field(default_factory=lambda: Lru(PLAN_CAPACITY))
    rates: Lru[RateKeyTuple, CodeRates] = field(default_factory=lambda: Lru(RATE_CAPACITY))


_caches: weakref.WeakKeyDictionary[Engine, ReferenceCache] = weakref.WeakKeyDictionary()
_caches_lock = threading.Lock()


def share_cache(engine: Engine, other: Engine) -> None:
    """Let `other`, an engine on the same database (the claims batches' async engine), use
    `engine`'s cache: one cache per process, whichever engine a claim's transaction is on."""
    with _caches_lock:
        _caches[other] = _caches.setdefault(engine, ReferenceCache())


def reference_cache(session: Session) -> ReferenceCache:
    """The cache of the database `session` is bound to."""
    engine = session.get_bind().engine
    cache = _caches.get(engine)
    if cache is None:
        with _caches_lock:
            cache = _caches.setdefault(engine, ReferenceCache())
    return cache
