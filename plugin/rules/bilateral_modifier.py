"""DN-MOD-001: modifier 50 is not reported on 20560/20561.

## What it does
Reports a dry-needling line that carries modifier 50 (bilateral procedure). RT and LT are left
alone: they are optional information with no payment effect.

## Why is this bad?
20560/20561 count every muscle of the session, so bilateral treatment raises the muscle count
(left and right are two muscles) instead of doubling the service. With a bilateral indicator of 0
the 150% rule does not apply and one unit is paid (CS-08); the CPT parallel for trigger-point
injections says not to report 50.

## Data
The indicator comes from ``mappings/mpfs_indicators.csv``: 20560's MPFS bilateral surgery indicator
is 0 from the 2025 fee schedule (FE-06, a code page reproducing CMS's table, medium confidence), and
the card cites it. 20561 has no row (its indicator was not given) and a 20560 line before 2025 has
none either: their cards give the rule from the codes' descriptors and CS-08 without an indicator
value. A row whose indicator allowed a bilateral adjustment would silence the rule for that code.

## Example
20560-50 for the left and right trapezius.

## Use instead
20560 without 50, one unit, with both trapezius sides named (two muscles); 20561 once three or more
muscles are treated.
"""

from __future__ import annotations

from dataclasses import replace

from needlecheck.mappings.mpfs_indicators import mpfs_indicators_for
from needlecheck.mappings.sources import policy_source
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
        indicators = mpfs_indicators_for(line.code, context.date_of(line))
        if indicators is not None and indicators.bilateral_adjustment:
            continue  # the fee schedule pays this code bilaterally: 50 is not wrong here
        summary = f"Remove modifier 50 from {line.code}; count each side as a muscle"
        if indicators is None:
            indicator = (f"The MPFS bilateral indicator of {line.code} on this date is not recorded; the codes' "
                         "descriptors count muscles, not sides.")
            cited: tuple[str, ...] = ("CS-08",)
        else:
            indicator = (f"Its MPFS bilateral surgery indicator is **{indicators.bilateral_surgery}** "
                         f"({indicators.fee_year} fee schedule, {indicators.source_id}, {indicators.confidence} "
                         "confidence): the 150% bilateral adjustment does not apply, and neither modifier 50 nor "
                         "RT and LT on two lines make it two services.")
            cited = (indicators.source_id, "CS-08")
        detail = (
            f"**{upper_first(line.label)}** reports {line.code} with modifier **50**. {indicator} The code counts "
            "all muscles treated in the session: left and right of a muscle are two muscles, reported once with "
            "one unit and no bilateral modifier. RT/LT may stay as information."
        )
        finding = RULE.finding(line, summary, detail)
        findings.append(replace(finding, sources=tuple(map(policy_source, cited))))
    return findings


RULE = Rule(
    rule_id="DN-MOD-001",
    title="Modifier 50 on a dry-needling code",
    severity=Severity.WARNING,
    topic=Topic.CLAIM,
    family=Family.MODIFIERS,
    checks="20560/20561 carry no modifier 50 (bilateral work raises the muscle count instead).",
    source_ids=("CS-08", "FE-06"),
    can_fix=False,
    check=check_bilateral_modifier,
    precedence=Precedence.MODIFIERS,
)
