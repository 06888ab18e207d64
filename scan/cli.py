"""``needlecheck scan INPUT --out DIR``: arguments, their checks, and the call of the scan."""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
from pathlib import Path

from needlecheck.cds_hooks.settings import Settings

EXIT_INVALID = 2
TOKEN_VARIABLE = "NEEDLECHECK_FHIR_TOKEN"


def add_scan_arguments(parser: argparse.ArgumentParser) -> None:
    """The arguments of ``needlecheck scan``."""
    parser.add_argument("input", help="a folder of FHIR Bulk Data NDJSON files (.ndjson, .ndjson.gz) or a FHIR base "
                                      f"URL (https://…; bearer token from ${TOKEN_VARIABLE})")
    parser.add_argument("--out", required=True, type=Path, help="folder for findings.csv, findings.ndjson, "
                                                                "summary.json and report.html")
    parser.add_argument("--since", help="first Claim.created date to scan (YYYY-MM-DD, inclusive)")
    parser.add_argument("--until", help="last Claim.created date to scan (YYYY-MM-DD, inclusive)")
    parser.add_argument("--workers", type=int, help="processes checking claims (default: all cores)")
    parser.add_argument("--config", type=Path, help="TOML configuration file (default: $NEEDLECHECK_CONFIG)")


def _fail(message: str) -> int:
    print(f"needlecheck: scan: {message}", file=sys.stderr)
    return EXIT_INVALID


def _date(value: str | None, option: str) -> dt.date | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{option} '{value}' is not a date (YYYY-MM-DD)") from None


def run_scan(args: argparse.Namespace, settings: Settings) -> int:
    """Check the arguments (exit 2 naming the wrong one) and run the scan (exit 0, or 1 if nothing was read)."""
    from needlecheck.mappings.loading import load_all
    from needlecheck.mappings.local_policy import configure_policy_dir
    from needlecheck.scan.runner import ScanOptions, run
    from needlecheck.scan.selection import DateRange

    try:
        dates = DateRange(_date(args.since, "--since"), _date(args.until, "--until"))
    except ValueError as error:
        return _fail(str(error))
    if dates.since and dates.until and dates.until < dates.since:
        return _fail(f"--until {dates.until} is before --since {dates.since}")
    workers = args.workers if args.workers is not None else (os.cpu_count() or 1)
    if workers < 1:
        return _fail(f"--workers must be 1 or more, not {workers}")
    source: str = args.input
    if source.startswith("http://") and not settings.allow_http:
        return _fail(f"INPUT '{source}' must be an https URL (allow_http is for tests only)")
    if not source.startswith(("https://", "http://")):
        folder = Path(source)
        if not folder.is_dir():
            return _fail(f"INPUT '{source}' is neither a folder of NDJSON files nor an https URL")
        if folder.resolve() == args.out.resolve():
            return _fail("--out must not be the INPUT folder: the results would be read as input next time")
        source = str(folder)
    if args.out.exists() and not args.out.is_dir():
        return _fail(f"--out '{args.out}' exists and is not a folder")
    configure_policy_dir(settings.policy_dir)  # the site's policy rows, as the hook has them
    load_all(settings.datasets_dir)
    options = ScanOptions(source=source, out_dir=args.out, dates=dates, workers=workers, fhir_limits=settings.fhir,
                          token=os.environ.get(TOKEN_VARIABLE) or None, rule_options=settings.rule_options,
                          rule_settings=dict(settings.rules))
    return run(options)
