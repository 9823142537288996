"""Prometheus metrics, defined once. Shell code records; /metrics exposes.

With several uvicorn workers set PROMETHEUS_MULTIPROC_DIR so every worker's samples are
aggregated (prometheus_client multiprocess mode); the CLI does this for you.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

HTTP_REQUESTS = Counter(
    "claims_http_requests_total",
    "HTTP requests by route template, method and status",
    ["route", "method", "status"],
)
HTTP_LATENCY = Histogram(
    "claims_http_request_duration_seconds",
    "HTTP request latency by route template",
    ["route", "method"],
    buckets=(0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10),
)
CLAIMS_ADJUDICATED = Counter(
    "claims_adjudicated_total",
    "Claims adjudicated (new or re-adjudicated), by resulting status",
    ["status"],
)
ADJUDICATION_DURATION = Histogram(
    "claims_adjudication_duration_seconds",
    "Time to load a claim's context, adjudicate and post it (database included)",
    buckets=(0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2),
)
# Group commit (services/batching.py): how many claims each committed submit transaction held, and
# how long it took, from its first statement to its commit. A batch that rolls back is not
# counted; its claims' retries, one transaction each, are. Small batches under load cost more
# CPU a claim; long ones are what a claim waits for before its own batch starts.
SUBMIT_BATCH_CLAIMS = Histogram(
    "claims_submit_batch_claims",
    "Claims per committed submit transaction (group commit)",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128),
)
SUBMIT_BATCH_DURATION = Histogram(
    "claims_submit_batch_duration_seconds",
    "Time a committed submit transaction took, from its first statement to its commit",
    buckets=(0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10),
)
INGEST_ROWS = Counter(
    "claims_ingest_rows_total",
    "Fee-schedule rate rows ingested, by source format",
    ["source"],
)
