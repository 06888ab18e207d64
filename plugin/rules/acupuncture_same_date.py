"""DN-PAIR-002: dry needling and acupuncture 97810-97814 are not reported for one date of service.

## What it does
Reports a 20560/20561 line when acupuncture (97810-97814) is reported or recorded for the same
patient on the same date of service (another line, or an earlier Procedure of that date). The pair
is row ``acupuncture-same-date`` of ``mappings/code_pairs.csv``.

## Why is this bad?
ACA guidance (as quoted) says that when dry needling and time-based acupuncture happen in the same
encounter only 97810-97814 are reported, and a secondary source says CMS edits stop 20561 with
97810-97814 on one date. The sources are of low-medium confidence; confirm against the current NCCI
PTP file (DN-NCCI-001 does, once it is installed).

## Example
Claim line 1 is 20560 and claim line 2 is 97810, both on 2026-03-02.

## Use instead
Report the acupuncture codes only for that encounter, or document two separate encounters.
"""

from __future__ import annotations

from needlecheck.plugin.context import BillingContext
from needlecheck.plugin.families import Family
from needlecheck.plugin.findings import Finding, Severity, Topic
from needlecheck.plugin.rule import Precedence, Rule
from needlecheck.plugin.same_day import same_date_findings

PAIR_ID = "acupuncture-same-date"


def check_acupuncture_same_date(context: BillingContext) -> list[Finding]:
    """One finding per line that meets acupuncture (or dry needling) on its date of service."""
    return same_date_findings(
        context, RULE, PAIR_ID,
        summary="dry needling and acupuncture on {day}: report one",
        advice=("When dry needling and time-based acupuncture happen in one encounter, guidance is to report only "
                "97810-97814; edits are reported to deny 20561 with 97810-97814 on the same date (confidence "
                "{confidence})."),
    )


RULE = Rule(
    rule_id="DN-PAIR-002",
    title="Dry needling with acupuncture on one date",
    severity=Severity.WARNING,
    topic=Topic.CLAIM,
    family=Family.CODE_PAIRS,
    checks="No 20560/20561 with 97810-97814 for the patient on the same date of service.",
    source_ids=("NC-03",),
    can_fix=False,
    check=check_acupuncture_same_date,
    precedence=Precedence.CODE_CHOICE,
)
