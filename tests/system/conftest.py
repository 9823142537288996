"""System test harness: the real service (uvicorn, 2 workers) on PostgreSQL, over loopback HTTP.

Runs when CLAIMS_SYSTEM_DATABASE_URL names a PostgreSQL database that these tests may wipe (use a
different database from CLAIMS_TEST_DATABASE_URL); skipped otherwise. Each module that asks for
`live_service` gets a wiped database, a server started on a free 127.0.0.1 port with the keys in
API_KEYS, and the reference data of scenario.py loaded through the API; the server is stopped
(SIGTERM, then SIGKILL) when the module ends.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text

from tests.system import scenario
from tests.system.harness import FIGURES, ServiceProcess

SYSTEM_DATABASE_ENV = "CLAIMS_SYSTEM_DATABASE_URL"
FULL_KEY = "system-full-key"  # every scope: reference data, claims write and read
READ_KEY = "system-read-key"
API_KEYS = {FULL_KEY: ["admin", "claims:write", "claims:read"], READ_KEY: ["claims:read"]}

ServiceFactory = Callable[..., ServiceProcess]


@pytest.fixture(scope="session")
def system_database_url() -> str:
    url = os.environ.get(SYSTEM_DATABASE_ENV)
    if not url:
        pytest.skip(f"system tests need a PostgreSQL database they may wipe: set {SYSTEM_DATABASE_ENV}")
    if not url.startswith("postgresql"):
        pytest.fail(f"{SYSTEM_DATABASE_ENV} must be a PostgreSQL URL, not {url.split(':')[0]}")
    if url == os.environ.get("CLAIMS_TEST_DATABASE_URL"):
        pytest.fail(f"{SYSTEM_DATABASE_ENV} must differ from CLAIMS_TEST_DATABASE_URL (both wipe it)")
    return url


@pytest.fixture(scope="session")
def system_db(system_database_url: str) -> Iterator[Engine]:
    """The test's own connection to the service's database, for checks the API cannot make."""
    engine = create_engine(system_database_url.replace("postgresql://", "postgresql+psycopg://", 1))
    yield engine
    engine.dispose()


def wipe(engine: Engine) -> None:
    """An empty database: the service builds the schema itself when it starts (serve migrates)."""
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()


@pytest.fixture(scope="module")
def service_factory(
    system_database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServiceFactory]:
    """Makes (unstarted) services; every one still running at the end of the module is stopped."""
    made: list[ServiceProcess] = []
    log_dir: Path = tmp_path_factory.mktemp("service")

    def make(database_url: str = system_database_url, **kwargs: object) -> ServiceProcess:
        service = ServiceProcess(
            database_url=database_url,
            api_keys=API_KEYS,
            log_path=log_dir / f"service-{len(made)}.log",
            **kwargs,  # type: ignore[arg-type]
        )
        made.append(service)
        return service

    yield make
    for service in made:
        service.stop()


@pytest.fixture(scope="module")
def live_service(system_db: Engine, service_factory: ServiceFactory) -> ServiceProcess:
    """A started service on a wiped database with scenario.py's reference data."""
    wipe(system_db)
    service = service_factory()
    service.start()
    with service.client(FULL_KEY) as admin:
        scenario.load_reference_data(admin)
    return service


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if FIGURES:
        terminalreporter.section("system test figures")
        for name, figures in FIGURES.items():
            terminalreporter.write_line(f"{name}: " + ", ".join(f"{k}={v}" for k, v in figures.items()))
