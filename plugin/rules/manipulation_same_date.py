"""DN-PAIR-005: osteopathic or chiropractic manipulation beside dry needling on one date, flagged for review.

## What it does
Reports, as information, a 20560/20561 line when osteopathic (98928, 98929) or chiropractic (98940,
98941) manipulation is reported or recorded for the same patient on the same date of service. The pair
is row ``manipulation-same-date`` of ``mappings/code_pairs.csv`` (confidence low).

## Why is this bad?
One coding page advises not to report dry needling with these manipulation codes on one date; no NCCI
procedure-to-procedure row for the pair was found (NC-07), so it is a review flag, not a known denial.
Under Medicare a chiropractor cannot furnish or bill dry needling at all (MC-07).

## Decisions
Only the four codes the coding page names are in the pair, not the whole 98925-98929 and 98940-98942
ranges of the catalog row: nothing is said about the others. The card is ``info`` and offers no change.

## Example
20560 and 98941 on one claim for 2026-03-02.

## Use instead
Check the payer's edits for the pair; when both services were distinct, document each separately.
"""

from __future__ import annotations

from needlecheck.plugin.context import BillingContext
from needlecheck.plugin.families import Family
from needlecheck.plugin.findings import Finding, Severity, Topic
from needlecheck.plugin.rule import Precedence, Rule
from needlecheck.plugin.same_day import same_date_findings

PAIR_ID = "manipulation-same-date"


def check_manipulation_same_date(context: BillingContext) -> list[Finding]:
    """One finding per dry-needling line that meets manipulation (98928/98929/98940/98941) on its date."""
    return same_date_findings(
        context, RULE, PAIR_ID,
        summary="manipulation with dry needling on {day}: check the payer's edits",
        advice=("One coding page advises not to report dry needling with osteopathic or chiropractic manipulation "
                "(98928, 98929, 98940, 98941) on one date; no NCCI edit for the pair was found. Check the "
                "payer's edits and document both services separately (confidence {confidence})."),
    )


RULE = Rule(
    rule_id="DN-PAIR-005",
    title="Manipulation with dry needling on one date",
    severity=Severity.INFO,
    topic=Topic.CLAIM,
    family=Family.CODE_PAIRS,
    checks="Flags 98928, 98929, 98940 or 98941 with 20560/20561 on the same date of service for review.",
    source_ids=("NC-07",),
    can_fix=False,
    check=check_manipulation_same_date,
    precedence=Precedence.CODE_CHOICE,
)
