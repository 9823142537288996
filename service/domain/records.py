"""`@record`: the immutable value type of the domain and of the layers around it.

A record is a dataclass with slots whose fields no code may assign: mypy (strict, run by
`make lint` and CI) refuses an assignment to a field, as it does for `frozen=True`, and the
class is hashable and compared by value, as a frozen one is. What it leaves out is frozen=True's
run-time guard, whose generated __init__ sets each field through object.__setattr__: about eight
times the cost of a plain slotted __init__ (3.0 against 0.3 us for nine fields), and a claim
builds some eighty records on its way from the request to the stored EOB: 6-7% of a claim's CPU
in the batch (docs/performance.md, thirteenth round).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar, dataclass_transform

T = TypeVar("T")


@dataclass_transform(frozen_default=True)
def record(cls: type[T]) -> type[T]:
    # unsafe_hash: the fields' hash, as frozen=True gives; safe, since no field is ever assigned.
    return dataclass(slots=True, unsafe_hash=True)(cls)
