"""DN-MCR-001: Medicare pays for dry needling only for chronic low back pain (NCD 30.3.3).

## What it does
For a dry-needling line of a Medicare (fee-for-service or Medicare Advantage) patient, checks the line's
ICD-10-CM diagnoses against NCD 30.3.3 on the date of service:

- before 2020-01-21, when NCD 30.3.3 took effect, Medicare covered acupuncture (dry needling included)
  for no indication at all: warning;
- with the NCD 30.3.3 ICD-10-CM list installed (data set ``ncd-30.3.3-icd10``): warning when no diagnosis
  of the line is a covered code on the list in force on that date;
- without the list: warning when every diagnosis of the line is one the sources put outside the NCD
  (``mappings/ncd_30_3_3_scope.csv``: cervicalgia M54.2 and other non-low-back pain, fibromyalgia under
  NCD 30.3.1, osteoarthritis under NCD 30.3.2); otherwise an ``info`` card saying it could not check.

The warning says what to do about the expected denial: for traditional Medicare an ABN and GA (GZ without
an ABN), an inference from the NCD's reasonable-and-necessary basis (MC-13); for Medicare Advantage no ABN
modifiers at all (MC-14). A line that already carries GA or GZ under traditional Medicare is reported as
``info``: the expected denial is already declared. Lines furnished only by a physical therapist or a
chiropractor under traditional Medicare are left to DN-MCR-004: no diagnosis makes them payable.

## Why is this bad?
Medicare denies the claim, and without an ABN (traditional Medicare) the practice cannot bill the patient
either.

## Example
A 20561 claim line for a Medicare patient with diagnosis M54.2 (cervicalgia) only.

## Use instead
Dry needling for Medicare only when the patient's chronic low back pain is the treated diagnosis, coded
with a code on the NCD 30.3.3 list; otherwise an ABN and GA (traditional Medicare) or the plan's
organization determination (Medicare Advantage).
"""

from __future__ import annotations

from needlecheck.mappings.icd10_ranges import ranges_holding
from needlecheck.mappings.medicare_ncd import ncd_in_force, ncd_scope
from needlecheck.mappings.ncd_diagnoses import DATASET_NAME
from needlecheck.plugin.context import BillingContext, ServiceLine
from needlecheck.plugin.families import Family
from needlecheck.plugin.findings import Finding, Severity, Topic
from needlecheck.plugin.medicare import (
    before_ncd_text,
    excluded_by_statute,
    icd10_diagnoses,
    ncd_list_on,
    not_covered_guidance,
    outside_ncd,
    shown,
)
from needlecheck.plugin.payer import Payer, PayerClass, payer_of
from needlecheck.plugin.rule import Rule
from needlecheck.plugin.terms import Coding
from needlecheck.plugin.wording import join_words, upper_first

_DECLARED_DENIAL = frozenset({"GA", "GZ"})


def check_medicare_clbp_diagnosis(context: BillingContext) -> list[Finding]:
    """A finding for each Medicare dry-needling line whose diagnoses NCD 30.3.3 does not cover."""
    payer = payer_of(context)
    if not payer.is_medicare:
        return []
    findings: list[Finding] = []
    for line in context.dry_needling_lines:
        finding = _check_line(context, payer, line)
        if finding is not None:
            findings.append(finding)
    return findings


def _check_line(context: BillingContext, payer: Payer, line: ServiceLine) -> Finding | None:
    day = context.date_of(line)
    if not ncd_in_force(day):
        return _before_ncd(line, day.isoformat())
    if excluded_by_statute(payer, line):
        return None
    diagnoses = icd10_diagnoses(line)
    if not diagnoses:
        # No diagnosis at all is DN-DOC-003's finding; a diagnosis in another code system cannot be matched.
        return _not_icd10(line) if line.indications else None
    listed = ncd_list_on(day)
    if listed is not None:
        if any(listed.covered_row(str(coding.code), day) for coding in diagnoses):
            return None
        reason = "none of them is a covered code on the installed NCD 30.3.3 ICD-10-CM list"
        return _not_covered(payer, line, diagnoses, reason)
    if all(outside_ncd(coding, day) for coding in diagnoses):
        labels = sorted({row.label.lower() for coding in diagnoses
                         for row in ranges_holding(ncd_scope(), str(coding.code), day)})
        reason = f"the sources put {join_words(labels)} outside NCD 30.3.3 (IC-05, MC-09)"
        return _not_covered(payer, line, diagnoses, reason)
    return RULE.could_not_check(line, DATASET_NAME)


def _not_icd10(line: ServiceLine) -> Finding:
    summary = f"{upper_first(line.label)}: NCD 30.3.3 coverage not checked, the diagnosis is not in ICD-10-CM"
    detail = (
        f"**{upper_first(line.label)}** ({line.code}) gives its diagnosis in another code system. Medicare "
        "claims and the NCD 30.3.3 list use ICD-10-CM; code the chronic low back pain in ICD-10-CM."
    )
    return RULE.finding(line, summary, detail, severity=Severity.INFO)


def _before_ncd(line: ServiceLine, day: str) -> Finding:
    start = before_ncd_text()
    summary = f"{upper_first(line.label)}: Medicare covered no dry needling before {start}"
    detail = (
        f"**{upper_first(line.label)}** ({line.code}) is dated {day}. Before NCD 30.3.3 took effect on {start}, "
        "Medicare covered acupuncture, dry needling included, for no indication (NCD 30.3), and 20560/20561 "
        "were non-covered codes (MC-15). Expect a denial; an ABN is needed before the patient can be billed."
    )
    return RULE.finding(line, summary, detail)


def _not_covered(payer: Payer, line: ServiceLine, diagnoses: tuple[Coding, ...], reason: str) -> Finding:
    codes = join_words([shown(coding) for coding in diagnoses])
    summary = f"{upper_first(line.label)}: Medicare covers dry needling only for chronic low back pain"
    declared = payer.payer_class is PayerClass.MEDICARE_FFS and bool(_DECLARED_DENIAL & set(line.modifiers))
    detail = (
        f"**{upper_first(line.label)}** ({line.code}) carries {codes}; {reason}. NCD 30.3.3 covers acupuncture, "
        "dry needling included, only for chronic low back pain (MC-01); every other indication stays "
        "non-covered (MC-08).\n\n"
    )
    if declared:
        detail += "The line already carries GA or GZ, so the expected denial is declared."
        return RULE.finding(line, summary, detail, severity=Severity.INFO)
    return RULE.finding(line, summary, detail + not_covered_guidance(payer))


RULE = Rule(
    rule_id="DN-MCR-001",
    title="Chronic low back pain diagnosis for Medicare",
    severity=Severity.WARNING,
    topic=Topic.COVERAGE,
    family=Family.COVERAGE,
    checks="A Medicare dry-needling line on or after 2020-01-21 carries a chronic low back pain diagnosis "
           "that NCD 30.3.3 covers.",
    source_ids=("MC-01", "MC-08", "MC-09", "IC-05", "MC-13", "MC-14", "MC-15"),
    can_fix=False,
    check=check_medicare_clbp_diagnosis,
    data_sets=(DATASET_NAME,),
)
