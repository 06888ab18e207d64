"""DN-MCR-005: GA, GY and GZ must not be combined on one line.

## What it does
Reports a dry-needling claim line of a traditional Medicare patient that carries two or more of the
modifiers that ``mappings/liability_modifiers.csv`` marks as exclusive (GA, GY, GZ). GX may go with GY and
is not counted.

## Why is this bad?
Each of GA, GY and GZ tells Medicare a different thing about why the line will not be paid and who is
liable: an ABN was given for an expected not-reasonable-and-necessary denial (GA), the service is outside
every benefit (GY), or a denial is expected and no ABN was given (GZ). They contradict each other, and
Medicare's instructions say not to combine them on one line (MC-11).

## Example
A 20560 claim line with modifiers GA and GY.

## Use instead
One of them: GY (or GX, or GX with GY) when the service is statutorily excluded, for instance furnished by a
physical therapist; GA or GZ when an eligible practitioner's service is expected to be denied.
"""

from __future__ import annotations

from needlecheck.mappings.liability_modifiers import liability_modifiers_on
from needlecheck.plugin.context import BillingContext
from needlecheck.plugin.families import Family
from needlecheck.plugin.findings import Finding, Severity, Topic
from needlecheck.plugin.payer import PayerClass, payer_of
from needlecheck.plugin.rule import Precedence, Rule
from needlecheck.plugin.wording import join_words, upper_first


def check_medicare_liability_modifiers_combined(context: BillingContext) -> list[Finding]:
    """A finding for each traditional Medicare dry-needling line with two exclusive liability modifiers."""
    if payer_of(context).payer_class is not PayerClass.MEDICARE_FFS:
        return []
    findings: list[Finding] = []
    for line in context.dry_needling_lines:
        exclusive = [row for row in liability_modifiers_on(line.modifiers) if row.exclusive]
        if len(exclusive) < 2:
            continue
        mods = join_words([row.modifier for row in exclusive])
        meanings = "\n".join(f"- **{row.modifier}**: {row.meaning}" for row in exclusive)
        summary = f"Keep only one of {mods}: they must not be combined on one line"
        detail = (
            f"**{upper_first(line.label)}** ({line.code}) carries {mods}, which say different things about "
            f"liability:\n\n{meanings}\n\nMedicare's instructions say not to combine GA, GY and GZ on one line "
            "(MC-11). Keep GY (or GX) for a statutorily excluded service, GA or GZ for an expected "
            "not-reasonable-and-necessary denial."
        )
        findings.append(RULE.finding(line, summary, detail))
    return findings


RULE = Rule(
    rule_id="DN-MCR-005",
    title="Medicare: GA, GY and GZ combined",
    severity=Severity.WARNING,
    topic=Topic.CLAIM,
    family=Family.MODIFIERS,
    checks="A traditional Medicare dry-needling line carries at most one of GA, GY and GZ.",
    source_ids=("MC-11",),
    can_fix=False,
    check=check_medicare_liability_modifiers_combined,
    precedence=Precedence.MODIFIERS,
    needs_coverage=True,
)
