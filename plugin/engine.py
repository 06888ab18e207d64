"""Running the rules over a billing context, and resolving which findings a person needs to see.

Rules run independently, so several of them may describe one root cause of one line: a physical
therapist's dry needling for a Medicare patient is a statutory exclusion, after which "needs KX" or
"document the low back pain's duration" are advice no one should follow. ``resolve`` applies the
rules' ``Precedence`` (statutory exclusion > coverage > code choice > modifiers > documentation) in
this one place: per line, the earliest decisive finding (one that settles the payer will not pay the
line) stays, and so does every finding about something else (the code, units, pairs, muscle naming);
the line's later findings of rules whose advice only serves getting this payer to pay, and the other
decisive findings, are dropped as moot.
"""

from __future__ import annotations

from needlecheck.plugin.context import BillingContext
from needlecheck.plugin.findings import Finding
from needlecheck.plugin.rules import all_rules


def run_rules(context: BillingContext) -> list[Finding]:
    """Every finding of every rule, in rule order and then line order, before precedence is applied."""
    findings: list[Finding] = []
    for rule in all_rules():
        findings.extend(rule.check(context))
    return findings


def resolve(findings: list[Finding]) -> list[Finding]:
    """One finding per root cause per line, ordered by precedence (the card a person reads first decides)."""
    if not findings:
        return []  # a clean call
    deciding: dict[str, Finding] = {}
    for finding in findings:
        if finding.decisive and not finding.unchecked:
            held = deciding.get(finding.line_key)
            if held is None or finding.precedence < held.precedence:
                deciding[finding.line_key] = finding
    kept = [finding for finding in findings if not _made_moot(finding, deciding.get(finding.line_key))]
    return sorted(kept, key=lambda finding: finding.precedence)


def _made_moot(finding: Finding, decided_by: Finding | None) -> bool:
    if decided_by is None or finding is decided_by:
        return False
    if finding.decisive:
        return True  # the line is not paid either way: one card says why
    return finding.needs_coverage and finding.precedence >= decided_by.precedence


def evaluate(context: BillingContext) -> list[Finding]:
    """The findings to show for ``context``: every rule's, with precedence applied."""
    return resolve(run_rules(context))
