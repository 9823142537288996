"""Schemathesis against openapi/openapi.json and the real server, with a key holding every scope.

Valid and invalid requests (positive and negative generation) for every operation: no 5xx, and
each response is documented: its status code, content type, headers and body schema; a request
the schema calls invalid is never accepted. The number of examples is bounded per operation so the
module runs in about a minute.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.system.conftest import FULL_KEY
from tests.system.harness import FIGURES, REPO_ROOT, ServiceProcess

pytestmark = pytest.mark.slow

EXAMPLES_PER_OPERATION = 25
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
]

# A request refused for its size (413) is rejected too, like every other 4xx the default lists.
REJECTED = ["400", "401", "403", "404", "405", "406", "409", "413", "415", "422", "428", "429"]
CONFIG = schemathesis.Config.from_dict(
    {"checks": {"negative_data_rejection": {"expected-statuses": REJECTED}}}
)
schema = schemathesis.openapi.from_path(REPO_ROOT / "openapi" / "openapi.json", config=CONFIG)
_cases: dict[str, int] = {}


@pytest.fixture(scope="module", autouse=True)
def _count_cases() -> Iterator[None]:
    yield
    if _cases:
        FIGURES["fuzz"] = {
            "operations": len(_cases),
            "cases": sum(_cases.values()),
            "examples_per_operation_max": EXAMPLES_PER_OPERATION,
        }


@schema.parametrize()
@settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,
    derandomize=True,  # the same cases every run: a failure here is reproducible, not flaky
    suppress_health_check=list(HealthCheck),
)
def test_every_operation_answers_as_documented(case: schemathesis.Case, live_service: ServiceProcess) -> None:
    key = case.operation.label
    _cases[key] = _cases.get(key, 0) + 1
    case.call_and_validate(
        base_url=live_service.url,
        headers={"Authorization": f"Bearer {FULL_KEY}"},
        checks=CHECKS,
        timeout=30,
    )
