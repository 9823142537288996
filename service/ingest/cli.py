"""Ingest subcommands of `claims-service`: import-rates (CSV) and import-tic (CMS TiC JSON)."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date
from pathlib import Path
from typing import Any

from ..settings import Settings
from .progress import ProgressBar, file_chunks


def add_commands(subparsers: Any) -> None:
    rates = subparsers.add_parser(
        "import-rates",
        help="replace a fee schedule's rates from a CSV file (procedure_code,modifier,allowed_amount)",
    )
    rates.add_argument("code", help="fee schedule code")
    rates.add_argument("file", type=Path)
    rates.add_argument("--quiet", action="store_true", help="no progress bar")
    rates.set_defaults(func=cmd_import_rates)

    tic = subparsers.add_parser(
        "import-tic", help="import a CMS Transparency-in-Coverage in-network-rates file into a network"
    )
    tic.add_argument("network", help="network code")
    tic.add_argument("file", type=Path)
    tic.add_argument(
        "--effective-from", type=date.fromisoformat, help="contract start (default: last_updated_on)"
    )
    tic.add_argument("--quiet", action="store_true", help="no progress bar")
    tic.set_defaults(func=cmd_import_tic)


def _progress(args: argparse.Namespace, label: str) -> ProgressBar | None:
    return None if args.quiet else ProgressBar(args.file.stat().st_size, label)


def cmd_import_rates(args: argparse.Namespace) -> int:
    from ..db.session import create_db_engine
    from .csv_rates import CsvRowError, UnknownFeeSchedule, import_csv_file

    engine = create_db_engine(Settings())
    progress = _progress(args, f"import-rates {args.code}")
    try:
        count = import_csv_file(engine, args.code, file_chunks(args.file, progress))
    except UnknownFeeSchedule:
        return _fail(progress, f"no fee schedule {args.code!r}")
    except CsvRowError as error:
        return _fail(progress, f"{args.file}: {error}; nothing was changed")
    finally:
        engine.dispose()
    if progress:
        progress.close()
    print(json.dumps({"code": args.code, "rate_count": count}))
    return 0


def cmd_import_tic(args: argparse.Namespace) -> int:
    from ..db.session import create_db_engine
    from .tic import TicFormatError, UnknownNetwork, import_tic_file

    engine = create_db_engine(Settings())
    progress = _progress(args, f"import-tic {args.network}")
    try:
        report = import_tic_file(engine, args.network, file_chunks(args.file, progress), args.effective_from)
    except UnknownNetwork:
        return _fail(progress, f"no network {args.network!r}")
    except TicFormatError as error:
        return _fail(progress, f"{args.file}: {error}; nothing was stored")
    finally:
        engine.dispose()
    if progress:
        progress.close()
    print(json.dumps(report.as_dict(), indent=2))
    return 0


def _fail(progress: ProgressBar | None, message: str) -> int:
    if progress:
        progress.close()
    print(f"claims-service: {message}", file=sys.stderr)
    return 1
