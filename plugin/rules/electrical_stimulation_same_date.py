"""DN-PAIR-004: electrical stimulation billed beside dry needling on one date is flagged for review.

## What it does
Reports, as information, a 20560/20561 line when electrical stimulation (97032, 97014 or G0283) is
reported or recorded for the same patient on the same date of service. The pair is row
``estim-same-date`` of ``mappings/code_pairs.csv`` (confidence low).

## Why is this bad?
For acupuncture, stimulation through the needles is part of 97813/97814 and UHC does not pay
97014/97032/G0283 with acupuncture. For dry needling no source addresses it; by inference,
stimulation delivered through the dry-needling needles is not a separate attended modality (97032
needs electrodes and constant attendance). It is a review flag, not a known denial.

## Example
20561 and 97032 on one claim for 2026-03-02.

## Use instead
Bill the e-stim only when it was a separate service with its own electrodes and documentation.
"""

from __future__ import annotations

from needlecheck.plugin.context import BillingContext
from needlecheck.plugin.families import Family
from needlecheck.plugin.findings import Finding, Severity, Topic
from needlecheck.plugin.rule import Precedence, Rule
from needlecheck.plugin.same_day import same_date_findings

PAIR_ID = "estim-same-date"


def check_electrical_stimulation_same_date(context: BillingContext) -> list[Finding]:
    """One finding per dry-needling line that meets electrical stimulation on its date of service."""
    return same_date_findings(
        context, RULE, PAIR_ID,
        summary="e-stim with dry needling on {day}: check it was a separate service",
        advice=("Stimulation through the dry-needling needles is, by inference from the acupuncture rules, not a "
                "separate attended modality; bill it only when it was a separate service with its own electrodes "
                "and notes (no source addresses dry needling directly; confidence {confidence})."),
    )


RULE = Rule(
    rule_id="DN-PAIR-004",
    title="Electrical stimulation with dry needling on one date",
    severity=Severity.INFO,
    topic=Topic.CLAIM,
    family=Family.CODE_PAIRS,
    checks="Flags 97032, 97014 or G0283 with 20560/20561 on the same date of service for review.",
    source_ids=("NC-06",),
    can_fix=False,
    check=check_electrical_stimulation_same_date,
    precedence=Precedence.CODE_CHOICE,
)
