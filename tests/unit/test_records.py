"""`@record` (service/domain/records.py): values as frozen dataclasses give them, immutability
checked by mypy rather than at run time."""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

import pytest
from mypy import api as mypy_api

from service.domain.eob import Group
from service.domain.model import Tier
from service.domain.money import ZERO
from service.domain.records import replace
from service.domain.rules.base import CostShare, Denial, LineWork

SERVICE = Path(__file__).resolve().parents[2] / "service"


def test_a_record_is_a_slotted_value() -> None:
    a = CostShare(copay=ZERO, deductible=ZERO, coinsurance=ZERO)
    b = CostShare(copay=ZERO, deductible=ZERO, coinsurance=ZERO)
    assert a == b and hash(a) == hash(b) and len({a, b}) == 1
    assert dataclasses.replace(a, copay=ZERO + 1) != a
    assert not hasattr(a, "__dict__")  # slots: no attribute can be added by mistake
    with pytest.raises(AttributeError):
        a.surprise = 1  # type: ignore[attr-defined]


def test_no_frozen_dataclass_is_left_beside_records() -> None:
    """One kind of value type: a frozen=True dataclass would pay its run-time guard again."""
    frozen = []
    for path in SERVICE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.keyword) and node.arg == "frozen":
                frozen.append(f"{path.relative_to(SERVICE)}:{node.value.lineno}")
    assert not frozen, frozen


def mypy_refusal(tmp_path: Path, source: str) -> str:
    """mypy --strict's report on a probe module that it must refuse."""
    probe = tmp_path / "probe.py"
    probe.write_text(source)
    out, _, status = mypy_api.run(["--strict", "--no-incremental", "--follow-imports=silent", str(probe)])
    assert status == 1, out
    return out


def test_mypy_refuses_an_assignment_to_a_field(tmp_path: Path) -> None:
    """The guarantee frozen=True gave at run time, here given by the type checker (CI runs it)."""
    out = mypy_refusal(
        tmp_path,
        "from decimal import Decimal\n"
        "from service.domain.model import AccumulatorBalance\n"
        "balance = AccumulatorBalance(deductible_met=Decimal(0), out_of_pocket_met=Decimal(0))\n"
        "balance.deductible_met = Decimal(1)\n",
    )
    assert 'Property "deductible_met" defined in "AccumulatorBalance" is read-only' in out


def test_replace_is_dataclasses_replace_for_records() -> None:
    """The generated replace gives what dataclasses.replace gives, field for field."""
    share = CostShare(copay=ZERO, deductible=ZERO + 1, coinsurance=ZERO + 2)
    work = LineWork(line=None, allowed=ZERO)  # type: ignore[arg-type]
    for obj, changes in [
        (share, {"copay": ZERO + 5}),
        (share, {}),
        (work, {"network_status": Tier.IN_NETWORK, "cost_share": share}),
        (work, {"denial": Denial(group=Group.CO, reason_code="197")}),
    ]:
        new = replace(obj, **changes)
        assert new == dataclasses.replace(obj, **changes)
        assert type(new) is type(obj) and new is not obj
    assert replace(work, allowed=ZERO + 1).allowed == ZERO + 1 and work.allowed == ZERO


def test_replace_refuses_a_field_the_record_lacks() -> None:
    share = CostShare(copay=ZERO, deductible=ZERO, coinsurance=ZERO)
    with pytest.raises(TypeError, match="surprise"):
        replace(share, surprise=1)


def test_mypy_checks_the_fields_replace_is_given(tmp_path: Path) -> None:
    """Type checkers see dataclasses.replace, whose plugin checks each keyword's name and type."""
    out = mypy_refusal(
        tmp_path,
        "from decimal import Decimal\n"
        "from service.domain.records import replace\n"
        "from service.domain.rules.base import CostShare\n"
        "share = CostShare(copay=Decimal(0), deductible=Decimal(0), coinsurance=Decimal(0))\n"
        "replace(share, copy=Decimal(1))\n"
        "replace(share, copay='1.00')\n",
    )
    assert 'Unexpected keyword argument "copy"' in out, out
    assert 'Argument "copay" to "replace" of "CostShare" has incompatible type "str"' in out, out
