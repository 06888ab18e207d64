"""DN-MOD-001: modifier 50 is not reported on 20560/20561.

## What it does
Reports a dry-needling line that carries modifier 50 (bilateral procedure). RT and LT are left
alone: they are optional information with no payment effect.

## Why is this bad?
20560/20561 count every muscle of the session, so bilateral treatment raises the muscle count
(left and right are two muscles) instead of doubling the service. With a bilateral indicator of 0
the 150% rule does not apply and one unit is paid; the CPT parallel for trigger-point injections
says not to report 50. The indicator for 20560/20561 itself was not retrieved (low confidence in
the value, medium in the rule).

## Example
20560-50 for the left and right trapezius.

## Use instead
20560 without 50, one unit, with both trapezius sides named (two muscles); 20561 once three or more
muscles are treated.
"""

from __future__ import annotations

from needlecheck.plugin.context import BillingContext
from needlecheck.plugin.families import Family
from needlecheck.plugin.findings import Finding, Severity, Topic
from needlecheck.plugin.rule import Precedence, Rule
from needlecheck.plugin.wording import upper_first

BILATERAL = "50"


def check_bilateral_modifier(context: BillingContext) -> list[Finding]:
    """A finding for each dry-needling line with modifier 50."""
    findings: list[Finding] = []
    for line in context.dry_needling_lines:
        if BILATERAL not in line.modifiers:
            continue
        summary = f"Remove modifier 50 from {line.code}; count each side as a muscle"
        detail = (
            f"**{upper_first(line.label)}** reports {line.code} with modifier **50**. The code counts all "
            "muscles treated in the session: left and right of a muscle are two muscles, reported once with "
            "one unit and no bilateral modifier. RT/LT may stay as information."
        )
        findings.append(RULE.finding(line, summary, detail))
    return findings


RULE = Rule(
    rule_id="DN-MOD-001",
    title="Modifier 50 on a dry-needling code",
    severity=Severity.WARNING,
    topic=Topic.CLAIM,
    family=Family.MODIFIERS,
    checks="20560/20561 carry no modifier 50 (bilateral work raises the muscle count instead).",
    source_ids=("CS-08",),
    can_fix=False,
    check=check_bilateral_modifier,
    precedence=Precedence.MODIFIERS,
)
