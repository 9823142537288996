"""`@record`: the immutable value type of the domain and of the layers around it.

A record is a dataclass with slots whose fields no code may assign: mypy (strict, run by
`make lint` and CI) refuses an assignment to a field, as it does for `frozen=True`, and the
class is hashable and compared by value, as a frozen one is. What it leaves out is frozen=True's
run-time guard, whose generated __init__ sets each field through object.__setattr__: about eight
times the cost of a plain slotted __init__ (3.0 against 0.3 us for nine fields), and a claim
builds some eighty records on its way from the request to the stored EOB: 6-7% of a claim's CPU
in the batch (docs/performance.md, thirteenth round).

`replace` is `dataclasses.replace` for records, without its per-call walk over the fields'
metadata: a function generated once per class calls the constructor with every field. The rules
replace a line's work record about nine times a claim; adjudicating, checking and serialising a
claim took 333 instead of 354 us (docs/performance.md, seventeenth round). Type checkers see
`dataclasses.replace` itself, so mypy still checks the names and types of the changed fields.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar, dataclass_transform

T = TypeVar("T")


@dataclass_transform(frozen_default=True)
def record(cls: type[T]) -> type[T]:
    # unsafe_hash: the fields' hash, as frozen=True gives; safe, since no field is ever assigned.
    return dataclass(slots=True, unsafe_hash=True)(cls)


_REPLACERS: dict[type, Callable[[Any, dict[str, Any]], Any]] = {}


def _replacer(cls: type) -> Callable[[Any, dict[str, Any]], Any]:
    fields = dataclasses.fields(cls)
    if any(not f.init for f in fields):  # a field the constructor does not take: the general path
        return lambda obj, changes: dataclasses.replace(obj, **changes)
    arguments = ", ".join(f"{f.name}=changes.pop({f.name!r}, obj.{f.name})" for f in fields)
    source = (
        "def replacer(obj, changes):\n"
        f"    new = cls({arguments})\n"
        "    if changes:\n"
        "        raise TypeError(f'{cls.__name__} has no field {next(iter(changes))!r}')\n"
        "    return new\n"
    )
    namespace: dict[str, Any] = {"cls": cls}
    exec(source, namespace)  # as dataclasses itself builds __init__; the names are the fields'
    replacer: Callable[[Any, dict[str, Any]], Any] = namespace["replacer"]
    return replacer


def _replace(obj: T, /, **changes: Any) -> T:
    replacer = _REPLACERS.get(type(obj))
    if replacer is None:
        replacer = _REPLACERS[type(obj)] = _replacer(type(obj))
    new: T = replacer(obj, changes)
    return new


if TYPE_CHECKING:
    from dataclasses import replace as replace
else:
    replace = _replace
