"""The ``needlecheck`` command: ``serve``, ``check REQUEST.json``, ``rules`` and ``audit``."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from needlecheck.cds_hooks.errors import ApiError
from needlecheck.cds_hooks.governance import Governance
from needlecheck.cds_hooks.invoke import run_hook
from needlecheck.cds_hooks.services import SERVICES
from needlecheck.cds_hooks.settings import SettingsError, load_settings
from needlecheck.mappings.datasets import dataset_specs, datasets_dir
from needlecheck.mappings.errors import MappingError
from needlecheck.mappings.loading import load_all
from needlecheck.mappings.local_policy import configure_policy_dir
from needlecheck.plugin.rule import Precedence
from needlecheck.plugin.rule_settings import describe_rule_setting
from needlecheck.plugin.rules import all_rules
from needlecheck.scan.cli import add_scan_arguments

EXIT_INVALID = 2
EXIT_PRECONDITION = 3


def _fail(message: str, code: int = EXIT_INVALID) -> int:
    # One line, whatever the message (a YAML parser's spans several): operators grep logs line by line.
    print(f"needlecheck: {' '.join(message.split())}", file=sys.stderr)
    return code


def _config_path(args: argparse.Namespace) -> Path | None:
    """``--config``, else ``$NEEDLECHECK_CONFIG``, else none (embedded defaults)."""
    if args.config is not None:
        return Path(args.config)
    return Path(os.environ["NEEDLECHECK_CONFIG"]) if os.environ.get("NEEDLECHECK_CONFIG") else None


def _serve(args: argparse.Namespace) -> int:
    from needlecheck.cds_hooks.server import StartupError, serve

    settings = load_settings(_config_path(args), host=args.host, port=args.port, workers=args.workers)
    configure_policy_dir(settings.policy_dir)  # a bad local row stops start-up here, before any worker
    if not settings.trusted_clients and not settings.bound_to_loopback and not args.insecure:
        return _fail(f"refusing to listen on {settings.host} without trusted clients; "
                     "bind to 127.0.0.1 or pass --insecure")
    try:
        serve(settings)
    except StartupError as error:
        return _fail(str(error))
    return 0


def _check(args: argparse.Namespace) -> int:
    settings = load_settings(_config_path(args))
    configure_policy_dir(settings.policy_dir)
    load_all(settings.datasets_dir)
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
            result = run_hook(service, body, settings.fhir, pool, options=settings.rule_options,
                              governance=Governance(settings.rules))
        except ApiError as error:
            code = EXIT_PRECONDITION if error.status == 412 else EXIT_INVALID
            return _fail(f"{args.request}: {error.message}", code)
    json.dump(result.body, sys.stdout, indent=2, ensure_ascii=False)
    sys.stdout.write("\n")
    return 0


def _precedence_markdown() -> str:
    """The precedence table of docs/rules.md: which family decides first, and its rules."""
    rows = []
    for level in Precedence:
        members = [rule for rule in all_rules() if rule.precedence is level]
        named = ", ".join(f"{rule.rule_id}{'*' if rule.needs_coverage else ''}" for rule in members)
        rows.append(f"| {int(level)} | {level.words} | {named} |")
    return (
        "## Precedence\n\nSeveral rules may describe one root cause of one line. The engine "
        "(`plugin/engine.py`) shows one card per root cause per line: when a finding settles that the payer "
        "will not pay a line (a *decisive* finding, e.g. a statutory exclusion or a non-covered diagnosis), "
        "the line's findings of later families from rules marked * (advice that only matters when the payer "
        "may pay: session caps and KX, NCD criteria, the payer's documentation) are dropped, and so are other "
        "decisive findings about the line. Findings about something else (the code, units, pairs, muscle "
        "naming) stay. Cards are listed in this order.\n\n"
        "| order | family | rules (* only for lines the payer may pay) |\n|---|---|---|\n" + "\n".join(rows) + "\n"
    )


def rules_markdown() -> str:
    """``docs/rules.md``: every rule's documentation, generated from the registry so it cannot drift."""
    parts = ["# Rules\n", "Generated by `needlecheck rules --markdown` from `plugin/rules/`; do not edit by hand.\n",
             _precedence_markdown()]
    for rule in all_rules():
        sources = "\n".join(f"- {s.source_id}: [{s.title}]({s.url}) ({s.confidence})" for s in rule.sources)
        specs = [dataset_specs()[name] for name in rule.data_sets]
        data_sets = "".join(
            f"- `{spec.name}`: {spec.title}, from <{spec.publisher_url}> ({spec.file_format})\n" for spec in specs)
        if data_sets:
            data_sets = f"\n### Data sets\n\n{data_sets}"
        title, _, body = rule.docs.partition("\n")
        parts.append(
            f"## {title}\n\nSeverity: {rule.severity}. Family: {rule.family}. Precedence: {rule.precedence.words}"
            f"{' (only for lines the payer may pay)' if rule.needs_coverage else ''}. "
            f"Suggests a fix: {'yes' if rule.can_fix else 'no'}.\n\n"
            f"{body.strip()}\n\n### Sources\n\n{sources}\n{data_sets}".replace("\n## ", "\n### "))
    return "\n".join(parts)


def _rules(args: argparse.Namespace) -> int:
    if args.markdown:
        sys.stdout.write(rules_markdown())
        return 0
    settings = load_settings(_config_path(args))
    configure_policy_dir(settings.policy_dir)
    installed = load_all(settings.datasets_dir)
    for rule in all_rules():
        sources = "; ".join(f"{s.source_id} {s.title} <{s.url}>" for s in rule.sources)
        fix = "suggests a fix" if rule.can_fix else "no automatic fix"
        print(f"{rule.rule_id}  {describe_rule_setting(rule, settings.rules)}  {rule.title}\n"
              f"    family {rule.family}; checks: {rule.checks}\n    {fix}; sources: {sources}")
        for iss, client_rules in settings.client_rules.items():
            if rule.rule_id in client_rules:
                print(f"    for client {iss}: "
                      f"{describe_rule_setting(rule, settings.rule_settings_for(iss))}")
        for name in rule.data_sets:
            print(f"    data set {name}: {'installed' if installed[name] else 'MISSING (the rule cannot check)'}")
    missing = [spec for name, spec in dataset_specs().items() if not installed[name]]
    if missing:
        print(f"\nMissing data sets (install the official files under {datasets_dir()}/<name>/):")
        for spec in missing:
            print(f"  {spec.name}: {spec.title} <{spec.publisher_url}>")
    return 0


def _audit(args: argparse.Namespace) -> int:
    # The store (Flask, database drivers) is imported only by the commands that read it: ``check`` starts faster.
    from needlecheck.cds_hooks.store import StoreUnavailable, open_store

    settings = load_settings(_config_path(args))
    try:
        store = open_store(settings)
        try:
            records = store.invocations(args.limit)
        finally:
            store.close()
    except StoreUnavailable as error:
        return _fail(str(error))
    for record in reversed(records):  # oldest first, as a log reads
        print(json.dumps(record.as_json(), ensure_ascii=False))
    return 0


def _report_day(value: str | None, option: str, next_day: bool = False) -> dt.datetime | None:
    """``--since``/``--until`` as a UTC instant (the start of that day; ``--until`` includes its day)."""
    if value is None:
        return None
    try:
        day = dt.date.fromisoformat(value)
    except ValueError as error:
        raise SettingsError(f"option '{option}' must be a date YYYY-MM-DD, not '{value}'") from error
    return dt.datetime.combine(day + dt.timedelta(days=1 if next_day else 0), dt.time(), dt.UTC)


def _report(args: argparse.Namespace) -> int:
    from needlecheck.cds_hooks.governance_report import write_report
    from needlecheck.cds_hooks.store import StoreUnavailable, open_store

    since = _report_day(args.since, "--since")
    until = _report_day(args.until, "--until", next_day=True)
    if since and until and since >= until:
        return _fail("option '--since' must be on or before '--until'")
    settings = load_settings(_config_path(args))
    try:
        store = open_store(settings)
        try:
            summary = write_report(store, Path(args.out), since, until)
        finally:
            store.close()
    except StoreUnavailable as error:
        return _fail(str(error))
    except OSError as error:
        return _fail(f"cannot write the report to {args.out}: {error.strerror}")
    print(f"wrote {Path(args.out) / 'index.html'} and summary.json: {summary['totals']['calls']} calls, "
          f"{summary['totals']['cardsShown']} cards shown")
    return 0


_CONFIG_HELP = "TOML configuration file (default: $NEEDLECHECK_CONFIG, else the embedded defaults)"


def _scan(args: argparse.Namespace) -> int:
    from needlecheck.scan.cli import run_scan

    return run_scan(args, load_settings(_config_path(args)))


class _VersionAction(argparse.Action):
    """``--version``: the installed version is looked up only when asked for (see ``needlecheck.__getattr__``)."""

    def __init__(self, option_strings: list[str], dest: str = argparse.SUPPRESS, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS,
                         help="show program's version number and exit", **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        import needlecheck

        sys.stdout.write(f"needlecheck {needlecheck.__version__}\n")  # to stdout, as argparse's own action
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``needlecheck`` command."""
    parser = argparse.ArgumentParser(
        prog="needlecheck",
        description="Needlecheck: a CDS Hooks service that catches dry-needling (CPT 20560/20561) coding errors "
                    "before an order is signed or a claim is finalized.",
        epilog="Run 'needlecheck COMMAND --help' for the options of a command.")
    parser.add_argument("--version", action=_VersionAction)
    commands = parser.add_subparsers(dest="command", required=True, title="commands", metavar="COMMAND")

    def command(name: str, summary: str, description: str) -> argparse.ArgumentParser:
        # ``help`` is the one sentence ``needlecheck --help`` lists; ``description`` heads the command's own help.
        return commands.add_parser(name, help=summary, description=f"{summary[0].upper()}{summary[1:]}. "
                                   f"{description}")

    serve = command("serve", "serve the CDS Hooks service over HTTP with gunicorn",
                    "Every table, source file and data set is loaded and the database opened before it listens; "
                    "a problem stops it with one line and exit status 2.")
    serve.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to listen on (default 8080)")
    serve.add_argument("--workers", type=int, help="gunicorn worker processes (default 2)")
    serve.add_argument("--config", type=Path, help=_CONFIG_HELP)
    serve.add_argument("--insecure", action="store_true", help="allow a non-loopback address without client auth")
    serve.set_defaults(run=_serve)
    check = command("check", "evaluate one CDS Hooks request file offline and print the response JSON",
                    "Exit status 0 on success, 2 for invalid input, 3 when data the decision needs cannot be had.")
    check.add_argument("request", help="path of a CDS Hooks request JSON file")
    check.add_argument("--config", type=Path, help=_CONFIG_HELP)
    check.set_defaults(run=_check)
    rules = command("rules", "list every rule with its severity, what it checks and its sources",
                    "Also says which external data sets are installed and which are missing.")
    rules.add_argument("--markdown", action="store_true", help="print docs/rules.md")
    rules.add_argument("--config", type=Path, help=_CONFIG_HELP)
    rules.set_defaults(run=_rules)
    audit = command("audit", "print the latest audit records, oldest first, one JSON object a line",
                    "Reads whichever database the configuration names (SQLite in the data directory, or PostgreSQL).")
    audit.add_argument("--limit", type=int, default=100, help="how many of the latest records (default 100)")
    audit.add_argument("--config", type=Path, help=_CONFIG_HELP)
    audit.set_defaults(run=_audit)
    report = commands.add_parser("report", help="write the alert-governance report (index.html, summary.json)")
    report.add_argument("--out", required=True, help="directory to write index.html and summary.json into")
    report.add_argument("--since", help="first day reported, YYYY-MM-DD (UTC; default: the first record)")
    report.add_argument("--until", help="last day reported, YYYY-MM-DD (UTC, included; default: now)")
    report.add_argument("--config", type=Path, help=_CONFIG_HELP)
    report.set_defaults(run=_report)
    scan = commands.add_parser("scan", help="check past claims in bulk and write a work list and a report")
    add_scan_arguments(scan)
    scan.set_defaults(run=_scan)
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
