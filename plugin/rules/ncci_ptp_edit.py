"""DN-NCCI-001: no NCCI procedure-to-procedure edit denies a dry-needling service or its same-day partner.

## What it does
With CMS's Practitioner PTP edit files installed (data set ``ncci-ptp-practitioner``), looks up every
pair of a 20560/20561 line and another service of the same date of service (a line of the request,
or an earlier Procedure of that date) and applies the edit in force on that date: modifier indicator
0 is a warning; indicator 1 is a warning unless the column-2 line carries an NCCI-associated modifier
(59, XE, XS, XP, XU, 25, anatomic modifiers ...; ``mappings/ncci_modifiers.csv``); indicator 9 (edit
deleted) and edits not yet effective or past their deletion date are ignored. Without the data set it
says, once per call, that it could not check, but only when a dry-needling line has another service on
its date (issue 9, card economy: with nothing to pair, the missing file would decide nothing), and only for a
Medicare payer, whose edits these are.

## Why is this bad?
With both codes of an edit on one date, column 1 is paid and column 2 is denied unless a modifier is
allowed and documented. NCCI denials cannot be shifted to the patient with an ABN.

## Example
20560 and 97140 on 2026-03-02 with an edit 20560/97140, modifier indicator 0, effective 2020-01-01.

## Use instead
Drop the column-2 service, or (indicator 1 only) add the modifier that documentation supports,
e.g. XS for a separate site.
"""

from __future__ import annotations

from needlecheck.mappings.datasets import loaded_dataset
from needlecheck.mappings.ncci_ptp import ALLOWED, DATASET_NAME, NOT_ALLOWED, PtpEdit, PtpEdits, ncci_modifiers
from needlecheck.plugin.context import BillingContext, ServiceLine
from needlecheck.plugin.families import Family
from needlecheck.plugin.findings import Finding, Severity, Topic
from needlecheck.plugin.payer import payer_of
from needlecheck.plugin.rule import Precedence, Rule
from needlecheck.plugin.same_day import SameDayService, services_on


def _column_2_modifiers(line: ServiceLine, other: SameDayService, edit: PtpEdit) -> tuple[str, ...] | None:
    """The column-2 service's modifiers, or None when it is an earlier Procedure whose claim we cannot see."""
    if edit.column_2 == line.code:
        return line.modifiers
    return other.modifiers if other.line is not None else None


def _problem(line: ServiceLine, other: SameDayService, edit: PtpEdit) -> tuple[Severity, str] | None:
    pair = f"{edit.column_1}/{edit.column_2} (effective {edit.effective.isoformat()}"
    pair += f", deleted after {edit.deleted.isoformat()})" if edit.deleted else ")"
    rationale = f" Rationale: {edit.rationale}." if edit.rationale else ""
    if edit.modifier_indicator == NOT_ALLOWED:
        return Severity.WARNING, (f"{other.label}: edit {pair}, modifier indicator 0: {edit.column_2} is denied "
                                  f"with {edit.column_1} on that date and no modifier bypasses it.{rationale}")
    if edit.modifier_indicator != ALLOWED:
        return None
    modifiers = _column_2_modifiers(line, other, edit)
    if modifiers is None:
        return Severity.INFO, (f"{other.label}: edit {pair}, modifier indicator 1: {edit.column_2} needs an "
                               f"NCCI-associated modifier on its claim line, which is not visible here.{rationale}")
    if ncci_modifiers() & set(modifiers):
        return None
    return Severity.WARNING, (f"{other.label}: edit {pair}, modifier indicator 1: {edit.column_2} is denied "
                              "unless it carries an NCCI-associated modifier (59, XE, XS, XP, XU, 25, anatomic "
                              f"...) that the documentation supports.{rationale}")


def check_ncci_ptp_edit(context: BillingContext) -> list[Finding]:
    """One finding per dry-needling line that meets a PTP edit on its date; could-not-check without the data."""
    if not context.dry_needling_lines:
        return []
    edits: PtpEdits | None = loaded_dataset(DATASET_NAME)
    if edits is None:
        # The files are Medicare's edits: for another payer they would not decide the line either.
        if not payer_of(context).is_medicare:
            return []
        # Only a line with another service on its date meets an edit: the missing file decides nothing else.
        paired = [line for line in context.dry_needling_lines
                  if services_on(context, context.date_of(line), besides=line)]
        return [RULE.could_not_check(paired[0], DATASET_NAME)] if paired else []
    findings: list[Finding] = []
    for line in context.dry_needling_lines:
        day = context.date_of(line)
        problems = []
        for other in services_on(context, day, besides=line):
            edit = edits.edit_between(line.code, other.code, day)
            if edit is not None and (problem := _problem(line, other, edit)):
                problems.append(problem)
        if not problems:
            continue
        severity = Severity.WARNING if any(level is Severity.WARNING for level, _ in problems) else Severity.INFO
        summary = f"NCCI PTP edit with {line.code} on {day.isoformat()}"
        detail = (f"On **{day.isoformat()}** {line.label} ({line.code}) meets these Medicare NCCI practitioner "
                  "PTP edits:\n\n" + "\n".join(f"- {text}" for _, text in problems))
        findings.append(RULE.finding(line, summary, detail, severity=severity))
    return findings


RULE = Rule(
    rule_id="DN-NCCI-001",
    title="NCCI PTP edit with a dry-needling code",
    severity=Severity.WARNING,
    topic=Topic.CLAIM,
    family=Family.CODE_PAIRS,
    checks="No Medicare NCCI practitioner PTP edit in force on the date of service denies 20560/20561 or the "
           "service reported with it (modifier indicator 0, or 1 without an NCCI-associated modifier).",
    source_ids=("NC-01", "NC-01-MODIFIERS"),
    can_fix=False,
    check=check_ncci_ptp_edit,
    precedence=Precedence.CODE_CHOICE,
    data_sets=(DATASET_NAME,),
)
