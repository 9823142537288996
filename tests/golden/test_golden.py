"""Golden cases: each file in cases/ is a claim, the reference data it meets, and the EOB the
core must produce, compared field by field; every EOB must also pass the invariants."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.domain.adjudicate import adjudicate
from service.domain.eob import check_invariants

from .loader import CASES, actual_claim, actual_line, expected_line, inputs, load_json

CASE_FILES = sorted(CASES.glob("*.json"))


def test_there_are_cases() -> None:
    assert len(CASE_FILES) >= 30


@pytest.mark.parametrize("path", CASE_FILES, ids=lambda p: p.stem)
def test_golden_case(path: Path) -> None:
    case = load_json(path)
    claim, ctx = inputs(case, path.stem)
    eob = adjudicate(claim, ctx, estimate=case.get("estimate", False))
    expected = case["expected"]
    actual = actual_claim(eob)

    assert check_invariants(eob) == []
    assert actual["status"] == expected["status"]
    assert actual["network_status"] == expected["network_status"]
    assert actual["plan_code"] == (ctx.member.plan.code if ctx.member else None)
    assert actual["accumulators"] == expected["accumulators"]
    assert actual["postings"] == expected.get("postings", [])
    if "totals" in expected:
        assert actual["totals"] == expected["totals"]

    submitted = sorted(claim.lines, key=lambda ln: ln.line_number)
    assert [ln["line_number"] for ln in expected["lines"]] == [ln.line_number for ln in submitted]
    for exp, sub, got in zip(expected["lines"], submitted, eob.lines, strict=True):
        want = expected_line(exp, sub, expected["network_status"])
        assert actual_line(got) == want, f"line {sub.line_number}"
