"""DN-DOC-003: the order or claim line states why the needling was done.

## What it does
Reports a dry-needling line with no indication: no ``reasonCode``/``reasonReference`` on the order or
Procedure and no diagnosis on the claim line.

## Why is this bad?
Without a diagnosis the payer cannot judge medical necessity and the claim is rejected or denied.

## Example
A ServiceRequest for 20560 with neither reasonCode nor reasonReference.

## Use instead
An ICD-10-CM reasonCode on the order (e.g. M79.18 myalgia, other site), or Claim.diagnosis linked from
the line's diagnosisSequence.
"""

from __future__ import annotations

from needlecheck.plugin.context import BillingContext
from needlecheck.plugin.families import Family
from needlecheck.plugin.findings import Finding, Severity, Topic
from needlecheck.plugin.rule import Precedence, Rule
from needlecheck.plugin.wording import upper_first


def check_indication_documented(context: BillingContext) -> list[Finding]:
    """A finding for each line without an indication."""
    findings: list[Finding] = []
    for line in context.dry_needling_lines:
        if line.indications:
            continue
        summary = "Add the diagnosis the dry needling treats"
        detail = (
            f"**{upper_first(line.label)}** ({line.code}) carries no indication: no reason on the order or "
            "Procedure and no diagnosis on the claim line. Add the ICD-10-CM diagnosis that supports "
            "medical necessity."
        )
        findings.append(RULE.finding(line, summary, detail))
    return findings


RULE = Rule(
    rule_id="DN-DOC-003",
    title="No indication",
    severity=Severity.WARNING,
    topic=Topic.CLAIM,
    family=Family.DOCUMENTATION,
    checks="A 20560/20561 line has a reasonCode/reasonReference or a claim diagnosis.",
    source_ids=("DOC-04",),
    can_fix=False,
    check=check_indication_documented,
    precedence=Precedence.DOCUMENTATION,
)
