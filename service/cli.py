"""Command line: `claims-service serve | migrate | openapi | <ingest commands>`."""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from . import serving
from .ingest.cli import add_commands as add_ingest_commands
from .logs import configure_logging
from .settings import Settings


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_auth_config(settings: Settings) -> str | None:
    """None when the configuration may start; else the reason it must not."""
    if not settings.api_keys and not _is_loopback(settings.host):
        return (
            f"refusing to listen on {settings.host} without API keys: set CLAIMS_API_KEYS "
            '(e.g. \'{"<key>": ["admin", "claims:write", "claims:read"]}\') or listen on 127.0.0.1'
        )
    return None


def cmd_migrate(_: argparse.Namespace) -> int:
    from .db.migrate import upgrade
    from .db.session import create_db_engine

    engine = create_db_engine(Settings())
    upgrade(engine)
    engine.dispose()
    print("database migrated to head", file=sys.stderr)
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    overrides = {
        k: v
        for k, v in (("host", args.host), ("port", args.port), ("workers", args.workers))
        if v is not None
    }
    settings = Settings(**overrides)
    problem = check_auth_config(settings)
    if problem:
        print(f"claims-service: {problem}", file=sys.stderr)
        return 2
    if not settings.api_keys:
        print(
            "claims-service: WARNING authentication is OFF (no CLAIMS_API_KEYS); "
            f"listening on loopback {settings.host} only",
            file=sys.stderr,
        )
    if not args.no_migrate:
        cmd_migrate(args)
    # JSON lines from the supervisor too (uvicorn's own config would print plain text beside them).
    configure_logging(settings.log_level)
    # The app factory reads settings from the environment in every worker process.
    os.environ["CLAIMS_HOST"] = settings.host
    if settings.workers > 1 and "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="claims-metrics-")
    options: dict[str, Any] = {
        "factory": True,
        "host": settings.host,
        "port": settings.port,
        "workers": settings.workers,
        "log_level": settings.log_level,
        "log_config": None,
        "access_log": False,
        "timeout_graceful_shutdown": 10,
    }
    if settings.workers > 1 and serving.supported(settings.port):
        # A listening socket per worker, so that connections spread over the workers (serving.py).
        serving.run_workers(uvicorn.Config("service.main:create_served_app", **options))
    else:
        uvicorn.run("service.main:create_served_app", **options)
    return 0


def cmd_openapi(args: argparse.Namespace) -> int:
    from .main import create_app

    spec = create_app(Settings(database_url="sqlite://")).openapi()
    text = json.dumps(spec, indent=2, sort_keys=True) + "\n"
    if args.output == "-":
        sys.stdout.write(text)
    else:
        Path(args.output).write_text(text)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="claims-service", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="migrate the database, then serve HTTP")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--workers", type=int)
    serve.add_argument("--no-migrate", action="store_true")
    serve.set_defaults(func=cmd_serve)

    migrate = sub.add_parser("migrate", help="upgrade the database schema to head")
    migrate.set_defaults(func=cmd_migrate)

    openapi = sub.add_parser("openapi", help="write the OpenAPI document")
    openapi.add_argument("--output", default="openapi/openapi.json")
    openapi.set_defaults(func=cmd_openapi)

    add_ingest_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
