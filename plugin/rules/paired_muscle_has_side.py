"""DN-DOC-002: a paired muscle is documented with its side.

## What it does
Reports muscles that appear on a dry-needling line without left, right or both.

## Why is this bad?
Left and right of one muscle are two muscles. Without the side the count may be one too low, and the
documentation cannot show which muscle was treated.

## Example
bodySite trapezius (31764008) with no laterality.

## Use instead
The laterality qualifier extension (7771000 left, 24028007 right, 51440002 both), a lateralized
concept, or a BodyStructure with its locationQualifier.
"""

from __future__ import annotations

from needlecheck.plugin.context import BillingContext
from needlecheck.plugin.families import Family
from needlecheck.plugin.findings import Finding, Severity, Topic
from needlecheck.plugin.rule import Precedence, Rule
from needlecheck.plugin.wording import join_words, upper_first


def check_paired_muscle_has_side(context: BillingContext) -> list[Finding]:
    """A finding for each line naming muscles without a side."""
    findings: list[Finding] = []
    for line in context.dry_needling_lines:
        unsided = line.muscles.unsided
        if not unsided:
            continue
        names = join_words([site.muscle or site.body_site.label for site in unsided])
        summary = f"Give the side (left, right or both) of {names}"
        if len(summary) > 100:
            summary = f"{len(unsided)} muscles lack a side (left, right or both)"
        detail = (
            f"**{upper_first(line.label)}** names {names} without a side. Left and right of one muscle "
            "count as two muscles, so the side decides the count and supports the code."
        )
        findings.append(RULE.finding(line, summary, detail))
    return findings


RULE = Rule(
    rule_id="DN-DOC-002",
    title="Paired muscle without side",
    severity=Severity.WARNING,
    topic=Topic.CLAIM,
    family=Family.DOCUMENTATION,
    checks="Each muscle of a 20560/20561 line carries a side (lateralized code, qualifier, expression, BodyStructure).",
    source_ids=("CS-04",),
    can_fix=False,
    check=check_paired_muscle_has_side,
    precedence=Precedence.DOCUMENTATION,
)
