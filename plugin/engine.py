"""Running the rules over a billing context."""

from __future__ import annotations

from needlecheck.plugin.context import BillingContext
from needlecheck.plugin.findings import Finding
from needlecheck.plugin.rules import all_rules


def evaluate(context: BillingContext) -> list[Finding]:
    """All findings of all rules, in rule order and then line order."""
    findings: list[Finding] = []
    for rule in all_rules():
        findings.extend(rule.check(context))
    return findings
