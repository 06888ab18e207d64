"""DN-MCR-003: review whether the low back pain is tied to pregnancy, surgery or a systemic cause.

## What it does
For a dry-needling line of a Medicare (fee-for-service or Medicare Advantage) patient on or after
2020-01-21, looks through the line's ICD-10-CM diagnoses and the patient's current Conditions (active,
recurrent, relapsed, or of unknown status) for codes in ``mappings/ncd_30_3_3_exclusions.csv``: the
pregnancy chapter and pregnancy status codes, malignant neoplasms, spinal infections, inflammatory
spondylopathies and post-surgical spine codes. Any hit is an ``info`` review flag naming the codes and
their categories; it never says the service is not covered.

Lines furnished only by a physical therapist or a chiropractor under traditional Medicare are left to
DN-MCR-004.

## Why is this bad?
NCD 30.3.3 covers only nonspecific low back pain: not linked to metastatic, inflammatory, infectious or
similar disease, not associated with surgery, not associated with pregnancy (MC-02, DOC-06). The NCD gives
these as clinical criteria, not a code list, so the code ranges are an inference of low confidence
(IC-04): a cancer elsewhere or a fusion of another joint may have nothing to do with the back pain.

## Example
A 20561 claim line for M54.50 for a patient with an active Condition Z33.1 (pregnant state).

## Use instead
State in the note why the low back pain is nonspecific despite the other diagnosis, or do not bill
Medicare for it (ABN and GA under traditional Medicare).
"""

from __future__ import annotations

import datetime as dt

from needlecheck.mappings.icd10_ranges import Icd10Range, ranges_holding
from needlecheck.mappings.medicare_ncd import ncd_exclusions
from needlecheck.plugin.context import BillingContext, ServiceLine
from needlecheck.plugin.families import Family
from needlecheck.plugin.findings import Finding, Severity, Topic
from needlecheck.plugin.medicare import icd10_diagnoses, is_current, lines_under_ncd
from needlecheck.plugin.rule import Precedence, Rule
from needlecheck.plugin.terms import ICD10CM_SYSTEM
from needlecheck.plugin.wording import join_words, upper_first


def check_medicare_clbp_exclusions(context: BillingContext) -> list[Finding]:
    """An ``info`` finding for each Medicare dry-needling line whose record suggests a non-covered cause."""
    findings: list[Finding] = []
    for line, day in lines_under_ncd(context):
        hits = _flagged_codes(context, line, day)
        if hits:
            findings.append(_review(line, hits))
    return findings


def _flagged_codes(context: BillingContext, line: ServiceLine, day: dt.date) -> dict[str, tuple[Icd10Range, str]]:
    """Each flagged code with its range and where it was found, line diagnoses first."""
    found: dict[str, tuple[Icd10Range, str]] = {}
    candidates = [(str(coding.code), "diagnosis of the line") for coding in icd10_diagnoses(line)]
    candidates += [(str(coding.code), f"{condition.clinical_status or 'current'} {condition.reference}")
                   for condition in context.conditions if is_current(condition)
                   for coding in condition.codes if coding.is_in(ICD10CM_SYSTEM)]
    for code, where in candidates:
        ranges = ranges_holding(ncd_exclusions(), code, day)
        if ranges and code not in found:
            found[code] = (ranges[0], where)
    return found


def _review(line: ServiceLine, hits: dict[str, tuple[Icd10Range, str]]) -> Finding:
    categories = sorted({row.category.replace("-", " ") for row, _ in hits.values()})
    summary = f"Review whether the back pain is tied to {join_words(categories)}"
    listed = "\n".join(f"- {code}: {row.label.lower()} ({row.category}; {where})"
                       for code, (row, where) in hits.items())
    detail = (
        f"**{upper_first(line.label)}** ({line.code}): the record carries codes that may tie the low back pain "
        f"to a cause NCD 30.3.3 excludes (MC-02):\n\n{listed}\n\n"
        "Medicare covers only nonspecific chronic low back pain, not associated with surgery or pregnancy. "
        "These code ranges are an inference of low confidence (IC-04); if the back pain is unrelated, say so "
        "in the note (DOC-06)."
    )
    return RULE.finding(line, summary, detail)


RULE = Rule(
    rule_id="DN-MCR-003",
    title="Medicare: low back pain possibly not nonspecific",
    severity=Severity.INFO,
    topic=Topic.COVERAGE,
    family=Family.COVERAGE,
    checks="No diagnosis of a Medicare dry-needling line or current Condition of the patient suggests pregnancy, "
           "surgery or a systemic cause of the back pain (review flag).",
    source_ids=("MC-02", "IC-04"),
    can_fix=False,
    check=check_medicare_clbp_exclusions,
    precedence=Precedence.COVERAGE,
    needs_coverage=True,
)
