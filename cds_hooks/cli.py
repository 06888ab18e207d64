"""The ``needlecheck`` command: ``serve``, ``check REQUEST.json`` and ``rules``."""

from __future__ import annotations

import argparse
import json
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from cds_hooks.errors import ApiError
from cds_hooks.invoke import run_hook
from cds_hooks.services import SERVICES
from cds_hooks.settings import SettingsError, load_settings
from mappings.errors import MappingError
from plugin.rules import all_rules

EXIT_INVALID = 2
EXIT_PRECONDITION = 3


def _fail(message: str, code: int = EXIT_INVALID) -> int:
    print(f"needlecheck: {message}", file=sys.stderr)
    return code


def _serve(args: argparse.Namespace) -> int:
    from cds_hooks.server import serve

    settings = load_settings(args.config, host=args.host, port=args.port, workers=args.workers)
    if not settings.bound_to_loopback and not args.insecure:
        return _fail(f"refusing to listen on {settings.host} without trusted clients; "
                     "bind to 127.0.0.1 or pass --insecure")
    serve(settings)
    return 0


def _check(args: argparse.Namespace) -> int:
    settings = load_settings(args.config)
    try:
        body = json.loads(Path(args.request).read_text(encoding="utf-8"))
    except OSError as error:
        return _fail(f"cannot read {args.request}: {error.strerror}")
    except ValueError as error:
        return _fail(f"{args.request} is not valid JSON: {error}")
    hook = body.get("hook") if isinstance(body, dict) else None
    service = next((s for s in SERVICES.values() if s.hook == hook), None)
    if service is None:
        known = ", ".join(sorted({s.hook for s in SERVICES.values()}))
        return _fail(f"{args.request}: field 'hook' must be one of: {known}")
    with ThreadPoolExecutor(max_workers=8) as pool:
        try:
            result = run_hook(service, body, settings.fhir, pool)
        except ApiError as error:
            code = EXIT_PRECONDITION if error.status == 412 else EXIT_INVALID
            return _fail(f"{args.request}: {error.message}", code)
    json.dump(result.body, sys.stdout, indent=2, ensure_ascii=False)
    sys.stdout.write("\n")
    return 0


def _rules(_: argparse.Namespace) -> int:
    for rule in all_rules():
        sources = "; ".join(f"{s.source_id} {s.title} <{s.url}>" for s in rule.sources)
        fix = "suggests a fix" if rule.can_fix else "no automatic fix"
        print(f"{rule.rule_id}  {rule.severity:<7}  {rule.title}\n    checks: {rule.checks}\n"
              f"    {fix}; sources: {sources}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``needlecheck`` command."""
    parser = argparse.ArgumentParser(prog="needlecheck", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve the CDS Hooks service with gunicorn")
    serve.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to listen on (default 8080)")
    serve.add_argument("--workers", type=int, help="gunicorn worker processes (default 2)")
    serve.add_argument("--config", type=Path, help="TOML configuration file")
    serve.add_argument("--insecure", action="store_true", help="allow a non-loopback address without client auth")
    serve.set_defaults(run=_serve)
    check = commands.add_parser("check", help="evaluate one CDS Hooks request file and print the response")
    check.add_argument("request", help="path of a CDS Hooks request JSON file")
    check.add_argument("--config", type=Path, help="TOML configuration file")
    check.set_defaults(run=_check)
    rules = commands.add_parser("rules", help="list every rule with its sources")
    rules.set_defaults(run=_rules)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args))
    except (SettingsError, MappingError) as error:
        return _fail(str(error))


if __name__ == "__main__":
    sys.exit(main())
