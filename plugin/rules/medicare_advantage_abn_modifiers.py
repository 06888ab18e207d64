"""DN-MCR-007: no ABN modifiers (GA, GX, GY, GZ) on a Medicare Advantage claim.

## What it does
Reports a dry-needling line of a Medicare Advantage patient (Source of Payment Typology 11x) that carries
any of the liability modifiers in ``mappings/liability_modifiers.csv``.

## Why is this bad?
The ABN and its modifiers belong to traditional Medicare. Medicare Advantage plans decide coverage before
the service through their own organization determination, and CMS has said not to use ABN modifiers for
MA enrollees (MC-14; one secondary source, low-medium confidence). The plan may reject the line or
misread it.

## Example
A 20560 claim line with modifier GY for a patient whose Coverage.type is SOPT 111 (Medicare HMO).

## Use instead
No GA/GX/GY/GZ; ask the plan for a pre-service organization determination when coverage is in doubt.
"""

from __future__ import annotations

from needlecheck.mappings.liability_modifiers import liability_modifiers_on
from needlecheck.plugin.context import BillingContext
from needlecheck.plugin.families import Family
from needlecheck.plugin.findings import Finding, Severity, Topic
from needlecheck.plugin.payer import PayerClass, payer_of
from needlecheck.plugin.rule import Precedence, Rule
from needlecheck.plugin.wording import join_words, upper_first


def check_medicare_advantage_abn_modifiers(context: BillingContext) -> list[Finding]:
    """A finding for each Medicare Advantage dry-needling line that carries an ABN modifier."""
    if payer_of(context).payer_class is not PayerClass.MEDICARE_ADVANTAGE:
        return []
    findings: list[Finding] = []
    for line in context.dry_needling_lines:
        present = [row.modifier for row in liability_modifiers_on(line.modifiers)]
        if not present:
            continue
        mods = join_words(present)
        summary = f"Remove {mods}: ABN modifiers are not used on this plan's claims"
        detail = (
            f"**{upper_first(line.label)}** ({line.code}) carries {mods}. ABN modifiers belong to traditional "
            "Medicare; Medicare Advantage plans decide coverage through their own pre-service organization "
            "determination, and ABN modifiers should not be used for MA enrollees (MC-14, low-medium "
            "confidence)."
        )
        findings.append(RULE.finding(line, summary, detail))
    return findings


RULE = Rule(
    rule_id="DN-MCR-007",
    title="Medicare Advantage: ABN modifiers",
    severity=Severity.WARNING,
    topic=Topic.CLAIM,
    family=Family.MODIFIERS,
    checks="A Medicare Advantage dry-needling line carries none of the ABN modifiers GA, GX, GY, GZ.",
    source_ids=("MC-14",),
    can_fix=False,
    check=check_medicare_advantage_abn_modifiers,
    precedence=Precedence.MODIFIERS,
    needs_coverage=True,
)
