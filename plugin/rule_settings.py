"""Per-site rule settings: a switch and a severity per rule, globally and per trusted client (tenant).

Applied to the engine's findings before they become cards: a disabled rule's findings are dropped, and a
configured severity replaces the rule's own. A rule that reports some findings more softly than its
severity (an ``info`` reminder beside its warnings) keeps them soft when the setting raises the rule: the
setting raises what the rule calls a problem, never a reminder. Lowering applies to every finding.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from needlecheck.plugin.findings import Finding, Severity
from needlecheck.plugin.rule import Rule
from needlecheck.plugin.rules import all_rules

_KEYS = frozenset({"enabled", "severity"})


class RuleSettingsError(ValueError):
    """A rule setting is invalid; the message names the key (``rules."DN-DOC-010".severity``)."""


@dataclass(frozen=True)
class RuleSetting:
    """What a site says about one rule; None leaves the rule's own behaviour (or the global setting)."""

    enabled: bool | None = None
    severity: Severity | None = None


RuleSettings = Mapping[str, RuleSetting]


def parse_rule_settings(value: Any, where: str) -> dict[str, RuleSetting]:
    """The TOML table ``where`` (``rules`` or ``trusted_clients[0].rules``), validated against the registry."""
    if not isinstance(value, dict):
        raise RuleSettingsError(f"setting '{where}' must be a table of rule ids ([{where}.\"DN-DOC-010\"])")
    known = {rule.rule_id for rule in all_rules()}
    settings: dict[str, RuleSetting] = {}
    for rule_id, table in value.items():
        key = f'{where}."{rule_id}"'
        if rule_id not in known:
            raise RuleSettingsError(f"setting '{key}': unknown rule id (see `needlecheck rules`)")
        if not isinstance(table, dict):
            raise RuleSettingsError(f"setting '{key}' must be a table with 'enabled' and/or 'severity'")
        unknown = sorted(set(table) - _KEYS)
        if unknown:
            raise RuleSettingsError(f"unknown setting '{key}.{unknown[0]}' (allowed: enabled, severity)")
        enabled = table.get("enabled")
        if enabled is not None and not isinstance(enabled, bool):
            raise RuleSettingsError(f"setting '{key}.enabled' must be true or false")
        severity = table.get("severity")
        if severity is not None and severity not in tuple(Severity):
            raise RuleSettingsError(f"setting '{key}.severity' must be one of: "
                                    f"{', '.join(str(level) for level in reversed(Severity))}")
        settings[rule_id] = RuleSetting(enabled, Severity(severity) if severity is not None else None)
    return settings


def effective_rule_settings(global_settings: RuleSettings, client_settings: RuleSettings | None) -> RuleSettings:
    """The global settings with a trusted client's own on top, key by key."""
    if not client_settings:
        return global_settings
    merged = dict(global_settings)
    for rule_id, own in client_settings.items():
        base = merged.get(rule_id, RuleSetting())
        merged[rule_id] = RuleSetting(own.enabled if own.enabled is not None else base.enabled,
                                      own.severity or base.severity)
    return merged


def rule_enabled(rule_id: str, settings: RuleSettings) -> bool:
    """Whether ``rule_id`` runs under ``settings`` (rules are on unless a setting turns them off)."""
    setting = settings.get(rule_id)
    return setting is None or setting.enabled is not False


def effective_severity(rule: Rule, settings: RuleSettings) -> Severity:
    """The severity the rule's problems are reported with under ``settings``."""
    setting = settings.get(rule.rule_id)
    return setting.severity if setting is not None and setting.severity is not None else rule.severity


def _adjusted(finding: Finding, rule: Rule, severity: Severity) -> Finding:
    if finding.unchecked or finding.severity is severity:
        return finding
    if finding.severity is rule.severity or severity.rank < finding.severity.rank:
        return replace(finding, severity=severity)
    return finding  # a softer reminder of the rule stays soft when the rule is raised


def apply_rule_settings(findings: list[Finding], settings: RuleSettings) -> list[Finding]:
    """``findings`` without those of disabled rules, each at the severity the settings give its rule."""
    if not settings:
        return findings
    rules = {rule.rule_id: rule for rule in all_rules()}
    kept: list[Finding] = []
    for finding in findings:
        if not rule_enabled(finding.rule_id, settings):
            continue
        rule = rules.get(finding.rule_id)
        kept.append(finding if rule is None else _adjusted(finding, rule, effective_severity(rule, settings)))
    return kept


def describe_rule_setting(rule: Rule, settings: RuleSettings) -> str:
    """``enabled  warning`` / ``disabled`` / ``enabled  info (configured)``: how the rule runs under ``settings``."""
    if not rule_enabled(rule.rule_id, settings):
        return f"{'disabled':<8}  {'':<20}"
    configured = settings.get(rule.rule_id)
    marked = " (configured)" if configured is not None and configured.severity is not None else ""
    return f"{'enabled':<8}  {effective_severity(rule, settings) + marked:<20}"
