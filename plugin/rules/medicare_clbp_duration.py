"""DN-MCR-002: under NCD 30.3.3 the low back pain must have lasted 12 weeks by the date of service.

## What it does
For a dry-needling line of a Medicare (fee-for-service or Medicare Advantage) patient on or after
2020-01-21, finds the patient's Conditions coded with the line's low back pain diagnosis (a code on the
installed NCD 30.3.3 list, or, without it, an ICD-10-CM diagnosis of the line whose title names the low
back) and measures from the earliest ``Condition.onset[x]`` to the date of service:

- shorter than the minimum duration in ``mappings/ncd_30_3_3_criteria.csv`` (12 weeks, 84 days): warning;
- no such Condition, or none with an onset: ``info``, the symptom duration is not documented (DOC-05);
- an onset after the date of service: warning to correct the onset (never a negative duration).

Decisions (issue 9): only a diagnosis that is low back pain is measured and called so (a covered code on
the installed list, or without it a code whose ICD-10-CM title names the low back:
``plugin.medicare.low_back_candidates``); myalgia M79.18 is never called low back pain. Lines NCD 30.3.3
cannot cover are left to DN-MCR-001 and DN-MCR-004. Precedence: coverage; the engine drops the finding
when a decisive finding already says the line will not be paid. Summaries name no payer.

Lines furnished only by a physical therapist or a chiropractor under traditional Medicare are left to
DN-MCR-004.

## Why is this bad?
NCD 30.3.3 defines chronic low back pain as lasting 12 weeks or longer (MC-02); before that the pain is
not chronic and Medicare denies the service. The duration is the first thing a reviewer looks for.

## Example
A 20560 claim line dated 2026-03-02 for M54.50, whose Condition has onset 2025-12-09 (83 days earlier).

## Use instead
Dry needling for Medicare from 12 weeks after the onset, with the onset recorded on the Condition
(``onsetDateTime``, ``onsetPeriod.start`` or ``onsetAge``) or stated in the note.
"""

from __future__ import annotations

import datetime as dt

from needlecheck.mappings.medicare_ncd import MINIMUM_DURATION_WEEKS, criterion_on
from needlecheck.plugin.context import BillingContext, ConditionFacts, ServiceLine
from needlecheck.plugin.families import Family
from needlecheck.plugin.findings import Finding, Severity, Topic
from needlecheck.plugin.medicare import conditions_for, lines_under_ncd, low_back_candidates, shown
from needlecheck.plugin.rule import Precedence, Rule
from needlecheck.plugin.terms import Coding
from needlecheck.plugin.wording import join_words, upper_first


def check_medicare_clbp_duration(context: BillingContext) -> list[Finding]:
    """A finding for each Medicare dry-needling line whose low back pain is not shown to be 12 weeks old."""
    findings: list[Finding] = []
    for line, day in lines_under_ncd(context):
        minimum = criterion_on(MINIMUM_DURATION_WEEKS, day)
        if minimum is None:
            continue  # the NCD in force that day sets no minimum duration
        diagnoses = low_back_candidates(line, day)
        if not diagnoses:
            continue  # no low back pain to measure: DN-MCR-001 reports the diagnosis
        finding = _check_duration(line, day, diagnoses, conditions_for(context.conditions, diagnoses),
                                  minimum.number)
        if finding is not None:
            findings.append(finding)
    return findings


def _check_duration(line: ServiceLine, day: dt.date, diagnoses: tuple[Coding, ...],
                    conditions: tuple[ConditionFacts, ...], weeks: int) -> Finding | None:
    codes = join_words([shown(coding) for coding in diagnoses])
    onsets = [condition.onset for condition in conditions if condition.onset]
    if not onsets:
        where = "whose Condition has no onset" if conditions else "with no Condition in the record"
        summary = f"Document when the low back pain began: coverage needs {weeks} weeks or more"
        detail = (
            f"**{upper_first(line.label)}** ({line.code}) treats {codes}, {where}. NCD 30.3.3 covers only low "
            f"back pain lasting {weeks} weeks or longer (MC-02), so the record should show how long it has "
            "lasted (DOC-05): an onset date on the Condition or the duration in the note."
        )
        return RULE.finding(line, summary, detail, severity=Severity.INFO)
    onset = min(onsets)
    days = (day - onset).days
    if days < 0:
        summary = "Check the Condition's onset: it is after the date of service"
        detail = (
            f"**{upper_first(line.label)}** ({line.code}, {day.isoformat()}) treats {codes}, whose Condition gives "
            f"its onset as {onset.isoformat()}, after the date of service. NCD 30.3.3 covers only low back pain "
            f"lasting {weeks} weeks or longer (MC-02); correct the onset so the record shows how long the pain "
            "has lasted (DOC-05)."
        )
        return RULE.finding(line, summary, detail)
    if days >= weeks * 7:
        return None
    summary = f"Check the onset or wait: low back pain began {days} days ago, under {weeks} weeks"
    detail = (
        f"**{upper_first(line.label)}** ({line.code}, {day.isoformat()}) treats {codes}, with onset "
        f"{onset.isoformat()}: {days} days before the date of service. NCD 30.3.3 covers only chronic low back "
        f"pain, lasting {weeks} weeks ({weeks * 7} days) or longer (MC-02). Medicare will deny the service as "
        "not reasonable and necessary; check the onset, or wait until the pain is chronic."
    )
    return RULE.finding(line, summary, detail)


RULE = Rule(
    rule_id="DN-MCR-002",
    title="Medicare: low back pain not yet chronic",
    severity=Severity.WARNING,
    topic=Topic.COVERAGE,
    family=Family.COVERAGE,
    checks="The Condition treated by a Medicare dry-needling line began at least 12 weeks before the date "
           "of service.",
    source_ids=("MC-02",),
    can_fix=False,
    check=check_medicare_clbp_duration,
    precedence=Precedence.COVERAGE,
    needs_coverage=True,
)
