"""Health endpoints for load balancers and orchestrators.

``/livez`` says the process answers (no database, no tables: restarting a live process cures nothing);
``/readyz`` says this instance can decide and record: every mapping table, policy source and installed data
set loaded and validated, the rule registry built, and the database reachable. A data set that is not
installed is listed in ``/readyz``'s detail but does not make the instance unready: the rules that need it
say they could not check, which is an administrator's matter, not a reason to take the instance out.
``/healthz`` (liveness plus a database read) stays as documented.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flask import Blueprint, Response, current_app

from needlecheck.cds_hooks.store import Store, StoreUnavailable
from needlecheck.mappings.datasets import dataset_files, dataset_specs, load_all_datasets, using_datasets
from needlecheck.mappings.errors import MappingError
from needlecheck.mappings.loading import TABLE_LOADERS
from needlecheck.plugin.rules import all_rules

log = logging.getLogger("needlecheck")
health_routes = Blueprint("health", __name__)


@dataclass(frozen=True)
class CheckResult:
    """One readiness check: its name, whether it passed, and (when it did not) why, in words safe to show."""

    name: str
    ok: bool
    problem: str | None = None


@dataclass(frozen=True)
class DataSetStatus:
    """An official data set, whether its files are installed, and the rules that cannot check without it."""

    name: str
    title: str
    installed: bool
    rule_ids: tuple[str, ...]

    def as_json(self) -> dict[str, Any]:
        """The entry ``/readyz`` lists."""
        return {"name": self.name, "installed": self.installed, "rules": list(self.rule_ids)}


def rules_check() -> CheckResult:
    """Every table, policy source and installed data set loads and validates, and the rule registry is built.

    The loaders are cached, so after the first success this costs a few dictionary look-ups.
    """
    try:
        for load in TABLE_LOADERS:
            load()
        load_all_datasets()
        rules = all_rules()
        for rule in rules:
            try:
                cited = rule.sources
            except KeyError as error:
                return CheckResult("rules", False, f"rule {rule.rule_id} cites policy source {error}, "
                                                   "which is not loaded")
            if not cited:
                return CheckResult("rules", False, f"rule {rule.rule_id} cites no source")
            for name in rule.data_sets:
                if name not in dataset_specs():
                    return CheckResult("rules", False, f"rule {rule.rule_id} names unknown data set '{name}'")
    except MappingError as error:
        return CheckResult("rules", False, str(error))
    except (OSError, KeyError, ValueError, RuntimeError) as error:
        # The type only: a message could be long or name paths; the log has the traceback.
        log.error("rules are not loaded: %s", type(error).__name__, exc_info=error)
        return CheckResult("rules", False, f"rules could not be loaded ({type(error).__name__})")
    if not rules:
        return CheckResult("rules", False, "no rule is registered")
    return CheckResult("rules", True)


def database_check(store: Store) -> CheckResult:
    """The database answers a read."""
    try:
        store.check()
    except StoreUnavailable as error:
        return CheckResult("database", False, str(error))  # StoreUnavailable messages are safe to show
    return CheckResult("database", True)


def data_set_status(installed: dict[str, bool] | None = None) -> tuple[DataSetStatus, ...]:
    """Every official data set some rule can use, installed or not, with the rules that read it.

    ``installed`` says which are (by name); by default the loaded data sets of this process decide.
    """
    installed = load_all_datasets() if installed is None else installed
    rules = all_rules()
    return tuple(
        DataSetStatus(name, spec.title, installed[name],
                      tuple(rule.rule_id for rule in rules if name in rule.data_sets))
        for name, spec in sorted(dataset_specs().items()))


def log_missing_data_sets(directory: Path | None) -> None:
    """One warning per data set not installed under ``directory``, naming the rules it leaves unable to check.

    For the start-up log of the gunicorn master: a folder's files are looked at, not parsed (the app parses
    and validates them when it loads).
    """
    with using_datasets(directory):
        installed = {name: bool(dataset_files(name)) for name in dataset_specs()}
    for status in data_set_status(installed):
        if not status.installed:
            log.warning("data set %s (%s) is not installed (put its official files in %s): rules %s cannot "
                        "check and say 'Not checked'", status.name, status.title,
                        directory / status.name if directory else "a data sets directory",
                        ", ".join(status.rule_ids) or "(none)")


def _json(body: dict[str, Any], status: int = 200, content_type: str = "application/json") -> Response:
    return Response(json.dumps(body, separators=(",", ":")), status=status, mimetype=content_type)


@health_routes.get("/livez")
def livez() -> Response:
    """Liveness: the process answers. Touches neither the database nor the tables."""
    return _json({"status": "ok"})


@health_routes.get("/readyz")
def readyz() -> Response:
    """Readiness: 200 with the checks and data sets, or 503 with an OperationOutcome naming each failed check."""
    checks = (rules_check(), database_check(current_app.extensions["needlecheck.store"]))
    failed = [check for check in checks if not check.ok]
    if failed:
        for check in failed:
            log.warning("not ready: %s: %s", check.name, check.problem)
        return _json({"resourceType": "OperationOutcome", "issue": [
            {"severity": "error", "code": "transient" if check.name == "database" else "exception",
             "details": {"text": check.name},
             "diagnostics": f"readiness check '{check.name}' failed: {check.problem}"}
            for check in failed]}, 503, "application/fhir+json")
    data_sets = data_set_status()
    return _json({
        "status": "ready",
        "checks": {check.name: "ok" for check in checks},
        "dataSets": [status.as_json() for status in data_sets],
        "missingDataSets": [status.name for status in data_sets if not status.installed],
    })
