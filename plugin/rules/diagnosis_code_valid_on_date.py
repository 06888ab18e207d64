"""DN-ICD-001: the diagnoses of a dry-needling service are billable ICD-10-CM codes on its date of service.

## What it does
Checks every ICD-10-CM diagnosis (system ``http://hl7.org/fhir/sid/icd-10-cm``, with or without the
dot) on a dry-needling line against the code set as it stood on the date of service: the April 2026
release shipped by ``simple-icd-10-cm`` plus the dated changes of ``mappings/icd10cm_changes.csv``.
Reports codes that do not exist, were deleted, did not exist yet, or are headers (categories with
children) that cannot be billed, naming the billable codes to use instead. Diagnoses in other
code systems are not checked.

## Why is this bad?
A claim with an invalid or non-billable diagnosis code is rejected before anyone reads it. M54.5
(low back pain) was deleted on 2021-10-01 and replaced by M54.50, M54.51 and M54.59; M79.1 (myalgia,
which includes myofascial pain syndrome) became a header with M79.10-M79.18, believed from
2022-10-01 (that date has low-medium confidence). Code meanings copied from unofficial web pages
are a known source of such errors; the official release is the reference.

## Example
20560 on 2021-10-01 with diagnosis M54.5; 20561 on 2023-02-14 with diagnosis M79.1.

## Use instead
M54.50, M54.51 or M54.59 for low back pain; M79.18 (or M79.10-M79.12) for myalgia. M54.5 stays
correct for a date of service up to 2021-09-30.
"""

from __future__ import annotations

import datetime as dt

from needlecheck.mappings.icd10cm import ICD10CM_RELEASE, MAX_NAMED_CODES, CodeState, CodeStatus, description, status_on
from needlecheck.plugin.context import BillingContext, ServiceLine
from needlecheck.plugin.families import Family
from needlecheck.plugin.findings import Finding, Severity, Topic
from needlecheck.plugin.rule import Precedence, Rule
from needlecheck.plugin.terms import ICD10CM_SYSTEM
from needlecheck.plugin.wording import join_words, upper_first

_UNSURE = frozenset({"low", "low-medium"})


def _one_of(codes: list[str]) -> str:
    """"a", "a or b", "a, b or c": the codes are alternatives."""
    return codes[0] if len(codes) == 1 else f"{', '.join(codes[:-1])} or {codes[-1]}"


def _codes_to_use(status: CodeStatus) -> str:
    codes = list(status.use_instead[:MAX_NAMED_CODES])
    extra = len(status.use_instead) - len(codes)
    if extra:
        codes.append(f"one of {extra} more")
    return _one_of(codes)


def _problem(status: CodeStatus, sent_as: str, day: dt.date) -> str:
    """One Markdown sentence about one code."""
    iso = day.isoformat()
    shown = status.code if sent_as == status.code else f"{status.code} (sent as \"{sent_as}\")"
    instead = f" Use {_codes_to_use(status)}." if status.use_instead else ""
    if status.state is CodeState.DELETED and status.change:
        text = f"**{shown}** was deleted on {status.change.date.isoformat()}, before {iso}.{instead}"
    elif status.state is CodeState.NOT_YET and status.change:
        text = f"**{shown}** exists only from {status.change.date.isoformat()}, after {iso}.{instead}"
    elif status.state is CodeState.HEADER:
        title = description(status.code)
        named = f" ({title})" if title else ""
        text = f"**{shown}**{named} is a header with subcodes, not a billable code on {iso}.{instead}"
    else:
        text = f"**{shown}** is not an ICD-10-CM code in the {ICD10CM_RELEASE} release.{instead}"
    if status.change and status.change.confidence in _UNSURE:
        text += (f" The {status.change.date.isoformat()} date of this change is not confirmed by a primary "
                 f"source (confidence {status.change.confidence}).")
    return text


def _summary(line: ServiceLine, statuses: list[CodeStatus], day: dt.date) -> str:
    first = statuses[0]
    if len(statuses) == 1 and first.use_instead:
        return (f"Use {_one_of(list(first.use_instead[:3]))} instead of {first.code}: not billable on "
                f"{day.isoformat()}")
    if len(statuses) == 1:
        return f"Replace {first.code}: not a billable ICD-10-CM code on {day.isoformat()}"
    named = [status.code for status in statuses[:3]] + ([f"{len(statuses) - 3} more"] if len(statuses) > 3 else [])
    return f"Replace {join_words(named)}: not billable ICD-10-CM codes on {day.isoformat()}"


def check_diagnosis_code_valid_on_date(context: BillingContext) -> list[Finding]:
    """One finding per dry-needling line with ICD-10-CM diagnoses that are not billable on its date."""
    findings: list[Finding] = []
    for line in context.dry_needling_lines:
        day = context.date_of(line)
        bad: list[tuple[CodeStatus, str]] = []
        looked_up: set[str] = set()  # a code sent twice (the order's reason and its Condition) has one status
        for coding in line.indications:
            if coding.code is None or coding.code in looked_up or not coding.is_in(ICD10CM_SYSTEM):
                continue
            looked_up.add(coding.code)
            status = status_on(coding.code, day)
            if not status.billable and status.code not in {seen.code for seen, _ in bad}:
                bad.append((status, coding.code.strip()))
        if not bad:
            continue
        problems = [_problem(status, sent_as, day) for status, sent_as in bad]
        detail = (f"{upper_first(line.label)} (date of service {day.isoformat()}) carries diagnoses that a "
                  "claim for that date cannot use:\n\n" + "\n".join(f"- {problem}" for problem in problems))
        findings.append(RULE.finding(line, _summary(line, [status for status, _ in bad], day), detail))
    return findings


RULE = Rule(
    rule_id="DN-ICD-001",
    title="Diagnosis code not billable on the date of service",
    severity=Severity.WARNING,
    topic=Topic.CLAIM,
    family=Family.CODING,
    checks="Each ICD-10-CM diagnosis of a 20560/20561 line exists and is billable (not a header) on its date "
           "of service (M54.5 until 2021-09-30; M79.1 a header from 2022-10-01).",
    source_ids=("ICD10CM-RELEASE", "IC-01", "IC-02"),
    can_fix=False,
    check=check_diagnosis_code_valid_on_date,
    precedence=Precedence.CODE_CHOICE,
)
