"""openapi/openapi.json is generated from the app (`make openapi`); it must never be stale."""

from __future__ import annotations

import json
from pathlib import Path

from service.main import create_app
from service.settings import Settings

SPEC = Path(__file__).resolve().parents[2] / "openapi" / "openapi.json"


def test_openapi_json_is_current() -> None:
    live = create_app(Settings(database_url="sqlite://")).openapi()
    stored = json.loads(SPEC.read_text())
    assert stored == json.loads(json.dumps(live)), "openapi/openapi.json is stale: run `make openapi`"


def test_spec_names_every_contract_path() -> None:
    paths = json.loads(SPEC.read_text())["paths"]
    for path in ("/healthz", "/readyz"):
        assert path in paths
