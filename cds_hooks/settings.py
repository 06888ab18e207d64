"""Service settings: embedded defaults, overridden by a TOML file (``--config``) and the command line."""

from __future__ import annotations

import ipaddress
import os
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from needlecheck.cds_hooks.fhir_client import FhirLimits
from needlecheck.cds_hooks.request_limits import RequestLimits
from needlecheck.cds_hooks.trust_settings import (
    AuthLimits,
    TrustConfigError,
    TrustedClient,
    check_trust,
    cors_origins,
    parse_auth_limits,
    parse_trusted_clients,
    public_base_url,
)
from needlecheck.mappings.datasets import default_datasets_dir
from needlecheck.plugin.context import RuleOptions
from needlecheck.plugin.rule_settings import RuleSetting, RuleSettings, RuleSettingsError, parse_rule_settings


def default_data_dir() -> Path:
    """``$NEEDLECHECK_DATA_DIR``, else the XDG data directory."""
    if os.environ.get("NEEDLECHECK_DATA_DIR"):
        return Path(os.environ["NEEDLECHECK_DATA_DIR"])
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "needlecheck"


def default_database_url() -> str | None:
    """``$NEEDLECHECK_DATABASE_URL`` (a PostgreSQL URL), else None: SQLite in the data directory."""
    return os.environ.get("NEEDLECHECK_DATABASE_URL") or None


LOG_FORMATS = ("text", "json")  # text lines, or one JSON object a line (cds_hooks/logging_setup.py)


class SettingsError(ValueError):
    """A configuration file or option is invalid; the message names the setting."""


@dataclass(frozen=True)
class Settings:
    """Everything the service can be configured with."""

    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = 2
    # gthread threads per worker: they run the Python of a call, which holds the GIL; FHIR waits happen on the
    # worker's FHIR thread pool, so a few are enough and more only contend for the GIL.
    threads: int = 4
    # Audit records queued per worker for its writer thread (cds_hooks/audit_writer.py); 0: written in the request.
    audit_queue: int = 1000
    data_dir: Path = field(default_factory=default_data_dir)
    max_body_bytes: int = 2_000_000
    max_json_depth: int = RequestLimits.max_json_depth
    max_bundle_entries: int = RequestLimits.max_bundle_entries
    max_claim_items: int = RequestLimits.max_claim_items
    fhir: FhirLimits = field(default_factory=FhirLimits)
    rule_options: RuleOptions = field(default_factory=RuleOptions)
    # Client authentication (cds_hooks/client_auth.py); no trusted clients is open mode, for loopback only.
    trusted_clients: tuple[TrustedClient, ...] = ()
    auth: AuthLimits = field(default_factory=AuthLimits)
    public_base_url: str | None = None
    cors_origins: tuple[str, ...] = ()
    allow_http: bool = False  # tests only: http:// for fhirServer, jwks_url and jku
    log_format: str = "text"  # or "json": one JSON object a line (cds_hooks/logging_setup.py)
    # May hold a password: kept out of repr so a logged Settings never shows it.
    database_url: str | None = field(default_factory=default_database_url, repr=False)
    # Alert governance: per-rule switches and severities ([rules."ID"], [trusted_clients.rules."ID"] by iss),
    # local policy rows, and how long an overridden card stays away (0: off).
    rules: dict[str, RuleSetting] = field(default_factory=dict)
    client_rules: dict[str, dict[str, RuleSetting]] = field(default_factory=dict)
    policy_dir: Path | None = None
    suppress_overridden_days: int = 0
    suppression_secret: str | None = field(default_factory=lambda: os.environ.get(
        "NEEDLECHECK_SUPPRESSION_SECRET") or None, repr=False)

    def rule_settings_for(self, client_iss: str | None) -> RuleSettings:
        """The rule settings of a call from the trusted client ``client_iss`` (None: open mode)."""
        from needlecheck.plugin.rule_settings import effective_rule_settings

        return effective_rule_settings(self.rules, self.client_rules.get(client_iss) if client_iss else None)

    @property
    def sqlite_database(self) -> Path:
        """The SQLite file feedback and the audit log are stored in when there is no ``database_url``."""
        return self.data_dir / "needlecheck.sqlite3"

    @property
    def datasets_dir(self) -> Path:
        """Where official data sets (NCCI edits, MUEs, NCD code lists) are installed, one folder each."""
        return default_datasets_dir() or self.data_dir / "datasets"

    @property
    def request_limits(self) -> RequestLimits:
        """The structure one request may carry."""
        return RequestLimits(self.max_json_depth, self.max_bundle_entries, self.max_claim_items)

    @property
    def bound_to_loopback(self) -> bool:
        """Whether the listening address is reachable from this machine only."""
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False


def _typed(name: str, value: Any, expected: type) -> Any:
    if expected is Path:
        if not isinstance(value, str):
            raise SettingsError(f"setting '{name}' must be a path string")
        return Path(value).expanduser()
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, expected) or isinstance(value, bool) != (expected is bool):
        raise SettingsError(f"setting '{name}' must be of type {expected.__name__}")
    return value


def load_settings(path: Path | None = None, **overrides: Any) -> Settings:
    """Defaults, then the TOML file's values, then ``overrides`` (those that are not None)."""
    settings = Settings()
    if path is not None:
        try:
            document = tomllib.loads(path.read_text(encoding="utf-8"))
        except OSError as error:
            raise SettingsError(f"cannot read config file {path}: {error.strerror}") from error
        except tomllib.TOMLDecodeError as error:
            raise SettingsError(f"config file {path} is not valid TOML: {error}") from error
        try:
            settings = _apply(settings, document)
        except SettingsError as error:
            raise SettingsError(f"config file {path}: {error}") from error
    given = {name: value for name, value in overrides.items() if value is not None}
    return _apply(settings, given) if given else settings


def _apply(settings: Settings, values: dict[str, Any]) -> Settings:
    types = {"host": str, "port": int, "workers": int, "threads": int, "audit_queue": int, "data_dir": Path,
             "max_body_bytes": int, "database_url": str,
             "max_json_depth": int, "max_bundle_entries": int, "max_claim_items": int, "log_format": str,
             "policy_dir": Path, "suppress_overridden_days": int, "suppression_secret": str}
    changes: dict[str, Any] = {}
    for name, value in values.items():
        if name == "fhir":
            changes["fhir"] = _table(name, value, settings.fhir)
        elif name == "documentation":
            changes["rule_options"] = _table(name, value, settings.rule_options)
        elif name == "rules":
            changes["rules"] = _rule_settings(value, "rules")
        elif name == "trusted_clients":
            tables, changes["client_rules"] = _client_rule_settings(value)
            changes[name] = _trust_setting(name, tables, values.get("allow_http", settings.allow_http))
        elif name in _TRUST_SETTINGS:
            changes[name] = _trust_setting(name, value, values.get("allow_http", settings.allow_http))
        elif name in types:
            changes[name] = _typed(name, value, types[name])
        else:
            raise SettingsError(f"unknown setting '{name}'")
    result = replace(settings, **changes)
    if not 0 < result.port < 65536:
        raise SettingsError("setting 'port' must be between 1 and 65535")
    if result.workers < 1:
        raise SettingsError("setting 'workers' must be at least 1")
    if result.threads < 1:
        raise SettingsError("setting 'threads' must be at least 1")
    if result.audit_queue < 0:
        raise SettingsError("setting 'audit_queue' must be 0 (write in the request) or a number of records")
    if result.log_format not in LOG_FORMATS:
        raise SettingsError(f"setting 'log_format' must be one of: {', '.join(LOG_FORMATS)}")
    try:
        check_trust(result.trusted_clients, result.public_base_url)
    except TrustConfigError as error:
        raise SettingsError(str(error)) from error
    if result.suppress_overridden_days < 0:
        raise SettingsError("setting 'suppress_overridden_days' must be 0 (off) or a number of days")
    if result.suppression_secret is not None and len(result.suppression_secret) < 32:
        raise SettingsError("setting 'suppression_secret' must be at least 32 characters")
    for limit in ("max_json_depth", "max_bundle_entries", "max_claim_items"):
        if getattr(result, limit) < 1:
            raise SettingsError(f"setting '{limit}' must be at least 1")
    return result


_TRUST_SETTINGS = frozenset({"trusted_clients", "auth", "public_base_url", "cors_origins", "allow_http"})


def _trust_setting(name: str, value: Any, allow_http: Any) -> Any:
    """One of the client-trust settings, parsed by ``trust_settings``; its errors become SettingsError."""
    try:
        if name == "trusted_clients":
            return parse_trusted_clients(value, allow_http is True)
        if name == "auth":
            return parse_auth_limits(value)
        if name == "public_base_url":
            return public_base_url(value)
        if name == "cors_origins":
            return cors_origins(value)
        return _typed(name, value, bool)
    except TrustConfigError as error:
        raise SettingsError(str(error)) from error


def _table(name: str, value: Any, current: Any) -> Any:
    """``current`` (a dataclass) with the keys of the config table ``name``, each checked against its field's type."""
    if not isinstance(value, dict):
        raise SettingsError(f"setting '{name}' must be a table")
    types = {f.name: type(getattr(current, f.name)) for f in fields(current)}
    unknown = set(value) - set(types)
    if unknown:
        raise SettingsError(f"unknown setting '{name}.{sorted(unknown)[0]}'")
    return replace(current, **{key: _typed(f"{name}.{key}", item, types[key]) for key, item in value.items()})


def _rule_settings(value: Any, where: str) -> dict[str, RuleSetting]:
    try:
        return parse_rule_settings(value, where)
    except RuleSettingsError as error:
        raise SettingsError(str(error)) from error


def _client_rule_settings(value: Any) -> tuple[Any, dict[str, dict[str, RuleSetting]]]:
    """``[trusted_clients.rules]`` taken out of each client's table (the trust parser knows no rules), by iss."""
    if not isinstance(value, list):
        return value, {}  # the trust parser names the error
    tables: list[Any] = []
    by_issuer: dict[str, dict[str, RuleSetting]] = {}
    for index, table in enumerate(value):
        if isinstance(table, dict) and "rules" in table:
            table = dict(table)
            rules = _rule_settings(table.pop("rules"), f"trusted_clients[{index}].rules")
            if isinstance(table.get("iss"), str):
                by_issuer[table["iss"]] = rules
        tables.append(table)
    return tables, by_issuer
