"""`claims-service import-rates` and `import-tic`: the same imports from a file, with a progress
bar on stderr, a JSON result on stdout and exit status 1 (nothing stored) for a bad file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from service.cli import main
from tests.factories import fee_schedule, network, row_counts
from tests.ingest.tic_support import FFS_SAMPLE, SAMPLES, network_prices, sample


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, database_url: str) -> None:
    monkeypatch.setenv("CLAIMS_DATABASE_URL", database_url)


def test_import_rates_from_a_file(
    cli_env: None, admin: TestClient, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fee_schedule(admin)
    csv_file = tmp_path / "rates.csv"
    csv_file.write_text("procedure_code,modifier,allowed_amount\n99213,,111.11\n70551,26,90\n")
    assert main(["import-rates", "ACME-2026", str(csv_file)]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out) == {"code": "ACME-2026", "rate_count": 2}
    assert "100.0%" in err  # the progress bar finished
    assert admin.get("/v1/fee-schedules/ACME-2026").json()["rate_count"] == 2


def test_import_rates_bad_row_exits_1_naming_the_line(
    cli_env: None, admin: TestClient, engine: Engine, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fee_schedule(admin)
    before = row_counts(engine)
    csv_file = tmp_path / "rates.csv"
    csv_file.write_text("procedure_code,modifier,allowed_amount\n99213,,1\n99214,,0\n")
    assert main(["import-rates", "ACME-2026", str(csv_file), "--quiet"]) == 1
    assert "line 3, column allowed_amount" in capsys.readouterr().err
    assert row_counts(engine) == before
    assert main(["import-rates", "NOPE", str(csv_file), "--quiet"]) == 1


def test_import_tic_from_a_file(
    cli_env: None, admin: TestClient, engine: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    sample(FFS_SAMPLE)  # skips when the shared samples are absent
    network(admin)
    assert main(["import-tic", "ACME-PPO", str(SAMPLES / FFS_SAMPLE), "--effective-from", "2021-01-01"]) == 0
    out, err = capsys.readouterr()
    report = json.loads(out)
    assert (report["rates"], report["contracts_created"], report["skipped"]) == (
        3,
        5,
        {"institutional billing_class": 2},
    )
    assert "import-tic ACME-PPO" in err
    assert len(network_prices(engine, "ACME-PPO")) == 15


def test_import_tic_bad_file_exits_1_with_the_path(
    cli_env: None, admin: TestClient, engine: Engine, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    network(admin)
    document = json.loads(sample(FFS_SAMPLE))
    document["in_network"][0]["negotiated_rates"][1]["negotiated_prices"][0]["negotiated_rate"] = 0
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(document))
    before = row_counts(engine)
    assert main(["import-tic", "ACME-PPO", str(bad), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "$.in_network[0].negotiated_rates[1].negotiated_prices[0].negotiated_rate" in err
    assert "nothing was stored" in err
    assert row_counts(engine) == before
