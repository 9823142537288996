"""GET /metrics: open, Prometheus text format, requests labelled by route template (never the raw
path: ids are PHI), adjudication counts and durations, and multiprocess aggregation."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from tests.claims_support import claim_body, submit
from tests.conftest import READ
from tests.factories import load_worked_example

REPO = Path(__file__).resolve().parents[2]


def _samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _value(client: TestClient, name: str, **labels: str) -> float:
    response = client.get("/metrics")
    assert response.status_code == 200, response.text
    return _samples(response.text).get((name, frozenset(labels.items())), 0.0)


def test_metrics_are_open_and_in_prometheus_text_format(client: TestClient) -> None:
    response = client.get("/metrics")  # no key, although the app has keys configured
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    names = {family.name for family in text_string_to_metric_families(response.text)}
    assert {"claims_http_requests", "claims_http_request_duration_seconds", "claims_adjudicated"} <= names


def test_openmetrics_when_the_scraper_asks_for_it(client: TestClient) -> None:
    response = client.get("/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/openmetrics-text")
    assert response.text.rstrip().endswith("# EOF")


def test_requests_are_counted_and_timed_by_route_template(client: TestClient) -> None:
    template = {"route": "/v1/claims/{claim_id}", "method": "GET"}
    before = _value(client, "claims_http_requests_total", **template, status="404")
    timed_before = _value(client, "claims_http_request_duration_seconds_count", **template)
    for claim_id in ("PHI-SECRET-1", "PHI-SECRET-2"):
        assert client.get(f"/v1/claims/{claim_id}", headers=READ).status_code == 404
    assert _value(client, "claims_http_requests_total", **template, status="404") == before + 2
    assert _value(client, "claims_http_request_duration_seconds_count", **template) == timed_before + 2
    assert "PHI-SECRET" not in client.get("/metrics").text


def test_requests_refused_before_routing_keep_their_template(client: TestClient) -> None:
    labels = {"route": "/v1/claims/{claim_id}/fhir", "method": "GET", "status": "401"}
    before = _value(client, "claims_http_requests_total", **labels)
    assert client.get("/v1/claims/PHI-SECRET-3/fhir").status_code == 401  # no key
    assert _value(client, "claims_http_requests_total", **labels) == before + 1
    assert "PHI-SECRET" not in client.get("/metrics").text


def test_unknown_paths_and_methods_are_folded(client: TestClient) -> None:
    unmatched = {"route": "unmatched", "method": "GET", "status": "401"}
    before = _value(client, "claims_http_requests_total", **unmatched)
    client.get("/no/such/path/PHI-SECRET-4")
    assert _value(client, "claims_http_requests_total", **unmatched) == before + 1

    odd = {"route": "/healthz", "method": "other", "status": "405"}
    before = _value(client, "claims_http_requests_total", **odd)
    client.request("BREW", "/healthz")
    assert _value(client, "claims_http_requests_total", **odd) == before + 1
    assert "PHI-SECRET" not in client.get("/metrics").text and "BREW" not in client.get("/metrics").text


def test_adjudications_are_counted_by_status_and_timed(client: TestClient, admin: TestClient) -> None:
    load_worked_example(admin)
    paid = _value(client, "claims_adjudicated_total", status="paid")
    timed = _value(client, "claims_adjudication_duration_seconds_count")
    submit(client, claim_body())
    assert _value(client, "claims_adjudicated_total", status="paid") == paid + 1
    assert _value(client, "claims_adjudication_duration_seconds_count") == timed + 1


def test_submit_transactions_are_counted_with_their_claims(client: TestClient, admin: TestClient) -> None:
    load_worked_example(admin)
    batches = _value(client, "claims_submit_batch_claims_count")
    claims = _value(client, "claims_submit_batch_claims_sum")
    timed = _value(client, "claims_submit_batch_duration_seconds_count")
    submit(client, claim_body())
    assert _value(client, "claims_submit_batch_claims_count") == batches + 1
    assert _value(client, "claims_submit_batch_claims_sum") == claims + 1
    assert _value(client, "claims_submit_batch_duration_seconds_count") == timed + 1


WORKER = textwrap.dedent(
    """
    import sys
    from fastapi.testclient import TestClient
    from service.main import create_app
    from service.settings import Settings

    requests, show = int(sys.argv[1]), sys.argv[2] == "show"
    with TestClient(create_app(Settings(database_url="sqlite://"))) as client:
        for _ in range(requests):
            assert client.get("/healthz").status_code == 200
        if show:
            print(client.get("/metrics").text)
    """
)


def test_multiprocess_mode_aggregates_every_worker(tmp_path: Path) -> None:
    """Like `serve --workers N`: each process writes its samples, /metrics in any one sums them."""
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir), "PYTHONPATH": str(REPO)}

    def worker(requests: int, show: bool) -> str:
        done = subprocess.run(
            [sys.executable, "-c", WORKER, str(requests), "show" if show else "quiet"],
            env=env,
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    worker(2, show=False)
    worker(3, show=False)
    text = worker(0, show=True)
    key = (
        "claims_http_requests_total",
        frozenset({"route": "/healthz", "method": "GET", "status": "200"}.items()),
    )
    assert _samples(text)[key] == 5
