"""DN-MCR-001: Medicare pays for dry needling only for chronic low back pain (NCD 30.3.3).

## What it does
For a dry-needling line of a Medicare (fee-for-service or Medicare Advantage) patient, checks the line's
ICD-10-CM diagnoses against NCD 30.3.3 on the date of service:

- before 2020-01-21, when NCD 30.3.3 took effect, Medicare covered acupuncture (dry needling included)
  for no indication at all: warning;
- with the NCD 30.3.3 ICD-10-CM list installed (data set ``ncd-30.3.3-icd10``): warning when no diagnosis
  of the line is a covered code on the list in force on that date;
- without the list, each diagnosis is placed by the sourced scope table first
  (``mappings/ncd_30_3_3_scope.csv``: cervicalgia M54.2 and other non-low-back pain, fibromyalgia under
  NCD 30.3.1, osteoarthritis under NCD 30.3.2), then by its ICD-10-CM title: a title naming the low back
  (low back pain, lumbago, lumbar, lumbosacral, sacral) may be the covered cLBP, and only then is the
  check "not checked" (the list would decide); when no diagnosis can be low back pain (M79.18 myalgia,
  M62.830 muscle spasm of back, M54.2) it is a warning, so such a line is never only "not checked".

The warning leads with the action: code the chronic low back pain if that is what is treated, otherwise
the ABN route: for traditional Medicare an ABN and GA (GZ without an ABN), an inference from the NCD's
reasonable-and-necessary basis (MC-13); for Medicare Advantage no ABN modifiers at all (MC-14); at
order-sign (an order carries no modifiers) the ABN to give before the service. A line that already
carries GA gets an ``info`` to keep the signed ABN on file (DOC-15), one with GZ an ``info`` that the
patient cannot be billed. Lines furnished only by a physical therapist or a chiropractor under
traditional Medicare are left to DN-MCR-004: no diagnosis makes them payable.

Decisions (issue 9): the finding is *decisive* (precedence: coverage): the engine drops the line's session
cap, duration and payer documentation findings, which only matter for a line Medicare may pay. Summaries
name no payer (the detail does).

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
    DECLARED_DENIAL,
    NcdFit,
    before_ncd_text,
    excluded_by_statute,
    icd10_diagnoses,
    ncd_fit,
    ncd_list_on,
    not_covered_guidance,
    shown,
)
from needlecheck.plugin.payer import Payer, PayerClass, payer_of
from needlecheck.plugin.rule import Precedence, Rule
from needlecheck.plugin.terms import Coding
from needlecheck.plugin.wording import join_words, upper_first


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
    ordered = context.hook == "order-sign"
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
        return _not_covered(payer, line, diagnoses, reason, ordered)
    fits = {ncd_fit(coding, day) for coding in diagnoses}
    if NcdFit.LOW_BACK in fits:
        # Only the official list can say whether this low back code is a covered one.
        return RULE.could_not_check(line, DATASET_NAME)
    outside = [coding for coding in diagnoses if ncd_fit(coding, day) is NcdFit.OUTSIDE]
    others = [coding for coding in diagnoses if ncd_fit(coding, day) is NcdFit.NOT_LOW_BACK]
    reasons = []
    if outside:
        labels = sorted({row.label.lower() for coding in outside
                         for row in ranges_holding(ncd_scope(), str(coding.code), day)})
        reasons.append(f"the sources put {join_words(labels)} outside NCD 30.3.3 (IC-05, MC-09)")
    if others:
        reasons.append(f"the ICD-10-CM title of {join_words([shown(c) for c in others])} names no low back "
                       "region, so it is not low back pain (the NCD 30.3.3 list is not installed to confirm)")
    return _not_covered(payer, line, diagnoses, "; ".join(reasons), ordered)


def _not_icd10(line: ServiceLine) -> Finding:
    summary = "Code the diagnosis in ICD-10-CM: NCD 30.3.3 coverage could not be checked"
    detail = (
        f"**{upper_first(line.label)}** ({line.code}) gives its diagnosis in another code system. Medicare "
        "claims and the NCD 30.3.3 list use ICD-10-CM; code the chronic low back pain in ICD-10-CM."
    )
    return RULE.finding(line, summary, detail, severity=Severity.INFO)


def _before_ncd(line: ServiceLine, day: str) -> Finding:
    start = before_ncd_text()
    summary = f"Get an ABN or expect a denial: dry needling was not covered before {start}"
    detail = (
        f"**{upper_first(line.label)}** ({line.code}) is dated {day}. Before NCD 30.3.3 took effect on {start}, "
        "Medicare covered acupuncture, dry needling included, for no indication (NCD 30.3), and 20560/20561 "
        "were non-covered codes (MC-15). Expect a denial; an ABN is needed before the patient can be billed."
    )
    return RULE.finding(line, summary, detail, decisive=True)


def _summary(payer: Payer, line: ServiceLine, ordered: bool) -> tuple[str, Severity]:
    declared = set() if ordered else DECLARED_DENIAL & {modifier.upper() for modifier in line.modifiers}
    if payer.payer_class is PayerClass.MEDICARE_ADVANTAGE:
        return "Code the chronic low back pain or ask the plan first: this diagnosis is not covered", Severity.WARNING
    if "GA" in declared:
        return "Keep the signed ABN on file: GA declares this diagnosis is not covered", Severity.INFO
    if "GZ" in declared:
        return "Bill GA instead of GZ only with a signed ABN: this diagnosis is not covered", Severity.INFO
    if ordered:
        return "Code the chronic low back pain, or give an ABN first: this diagnosis is not covered", Severity.WARNING
    return "Code the chronic low back pain, or give an ABN and bill GA: diagnosis not covered", Severity.WARNING


def _not_covered(payer: Payer, line: ServiceLine, diagnoses: tuple[Coding, ...], reason: str,
                 ordered: bool) -> Finding:
    codes = join_words([shown(coding) for coding in diagnoses])
    summary, severity = _summary(payer, line, ordered)
    detail = (
        f"**{upper_first(line.label)}** ({line.code}) carries {codes}; {reason}. NCD 30.3.3 covers acupuncture, "
        "dry needling included, only for chronic low back pain (MC-01); every other indication stays "
        "non-covered (MC-08). If chronic low back pain is what is treated, code it.\n\n"
    )
    guidance = not_covered_guidance(payer, None if ordered else line, ordered)
    return RULE.finding(line, summary, detail + guidance, severity=severity, decisive=True)


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
    precedence=Precedence.COVERAGE,
    needs_coverage=True,
    data_sets=(DATASET_NAME,),
)
