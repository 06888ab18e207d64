"""DN-NCCI-002: units of a code on one date stay within its Medicare NCCI MUE.

## What it does
With CMS's Practitioner Services MUE table installed (data set ``ncci-mue-practitioner``), compares
the units of each code of a call that has a dry-needling line with the code's MUE in the table in
force on the date of service. MAI 1 (line edit) compares each line alone; MAI 2 and 3 (date-of-service
edits) add up every line of that code and date and each earlier Procedure of that date (one unit
each).

While no installed table applies to the date, the values shipped in ``mappings/ncci_mue_defaults.csv``
stand in: 20560's MUE is 1 (FE-07, a 2025 code page reproducing CMS's table, medium confidence). That
source gives no MAI, so only a line whose own units exceed the value is reported (it exceeds under any
MAI); the card says to verify the value in the CMS file, which supersedes it once installed. 20561 has no
value (the source says only "expect 1, unverified").

Without a value, it says, once per call, that it could not check, but only when a code reaches more than
one unit on a date that no shipped value decides (issue 9, card economy: one unit never exceeds an MUE,
which is at least 1 for a code that is paid at all; an inference), and only for a Medicare payer, whose
edits these are.

## Why is this bad?
Units above the MUE are denied. MAI 2 is an absolute date-of-service limit that cannot be overridden
on appeal; MAI 3 is based on clinical data; MAI 1 lines can be bypassed with modifiers on separate
lines when documentation supports it. In February 2020 CMS had not yet set an MUE for 20560/20561;
the current value must come from the installed table.

## Example
20560 with quantity 2 on 2026-03-02 (the shipped MUE of 20560 is 1); 20561 with quantity 2 when the
installed table gives 20561 an MUE of 1 with MAI 2.

## Use instead
Report the units the MUE allows; for dry needling, one unit of the code that fits the muscle count.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import replace
from decimal import Decimal

from needlecheck.mappings.datasets import loaded_dataset
from needlecheck.mappings.ncci_mue import (
    DATASET_NAME,
    NOT_GIVEN,
    MueDefault,
    MueTables,
    MueValue,
    mue_defaults,
    mue_on,
)
from needlecheck.mappings.sources import policy_source
from needlecheck.plugin.context import BillingContext, ServiceLine
from needlecheck.plugin.families import Family
from needlecheck.plugin.findings import Finding, Severity, Topic
from needlecheck.plugin.payer import payer_of
from needlecheck.plugin.rule import Precedence, Rule, from_table
from needlecheck.plugin.same_day import history_on
from needlecheck.plugin.wording import join_words

_MAI_MEANING = {
    "1": "MAI 1, a claim-line edit (separate lines with modifiers only where documentation supports them)",
    "2": "MAI 2, an absolute date-of-service edit that cannot be overridden on appeal",
    "3": "MAI 3, a date-of-service edit based on clinical data",
    NOT_GIVEN: "MAI not given by the source, so only a line above the value is counted",
}


def _finding(line: ServiceLine, day: dt.date, units: Decimal, mue: MueValue, counted: list[str]) -> Finding:
    iso = day.isoformat()
    summary = f"{units:g} units of {mue.code} on {iso} exceed its MUE of {mue.max_units}"
    meaning = _MAI_MEANING[mue.adjudication_indicator]
    if mue.source_ids:
        cited = ", ".join(f"{policy_source(source_id).title} ({source_id}, {policy_source(source_id).confidence} "
                          "confidence)" for source_id in mue.source_ids)
        where = (f"as given by {cited}; {meaning}. No CMS MUE table is installed for this date: verify the value "
                 "in the CMS file, which replaces it once installed")
    else:
        where = f"{meaning}; rationale: {mue.rationale or 'not given'}"
    detail = (f"Medicare's practitioner MUE for **{mue.code}** is **{mue.max_units}** "
              f"unit{'s' if mue.max_units != 1 else ''} ({where}). On **{iso}** {join_words(counted)} report "
              f"{units:g} units. Units above the MUE are denied and cannot be billed to the patient.")
    # A shipped value cites where it was read; an installed table's value is CMS's own file.
    cited_ids = (*mue.source_ids, "CS-10")
    return replace(RULE.finding(line, summary, detail), sources=tuple(map(policy_source, cited_ids)))


def _lines_over_one_unit(context: BillingContext) -> list[ServiceLine]:
    """The lines whose code reaches more than one unit on its date (the line, the date's other lines of the
    code and its earlier Procedures): only there could an MUE, which is at least 1 for a payable code, deny."""
    units: dict[tuple[dt.date, str], Decimal] = defaultdict(Decimal)
    for line in context.lines:
        units[(context.date_of(line), line.code)] += line.units
    for prior in context.history:
        if prior.date_of_service is not None:
            units[(prior.date_of_service, prior.code)] += 1
    return [line for line in context.lines if units[(context.date_of(line), line.code)] > 1]


def _undecided(context: BillingContext, decided: set[str]) -> list[ServiceLine]:
    """Lines over one unit on their date whose MUE no shipped value settles (none, or its MAI is not given and
    the line alone stays within it): the installed table would decide them."""
    return [line for line in _lines_over_one_unit(context) if line.key not in decided]


def _default_codes(defaults: tuple[MueDefault, ...]) -> frozenset[str]:
    return frozenset(row.value.code for row in defaults)


def check_ncci_mue(context: BillingContext) -> list[Finding]:
    """Findings for units above the MUE, per line (MAI 1) or per code and date (MAI 2 and 3)."""
    if not context.dry_needling_lines:
        return []
    tables: MueTables | None = loaded_dataset(DATASET_NAME)
    findings: list[Finding] = []
    decided: set[str] = set()  # lines a shipped value (no table installed) settled
    per_date: dict[tuple[dt.date, str], list[ServiceLine]] = defaultdict(list)
    mue_of: dict[tuple[dt.date, str], MueValue] = {}  # the MUE of each (date, code) of ``per_date``
    defaulted = from_table(mue_defaults(), _default_codes)
    for line in context.lines:
        if tables is None and line.code not in defaulted:
            continue  # no MUE for this code: without a table only the shipped defaults give one
        day = context.date_of(line)
        mue = mue_on(tables, line.code, day)
        if mue is None:
            continue
        if mue.source_ids and (mue.adjudication_indicator != NOT_GIVEN or line.units > mue.max_units):
            decided.add(line.key)
        if mue.per_date:
            per_date[(day, line.code)].append(line)
            mue_of[(day, line.code)] = mue
        elif line.units > mue.max_units:
            findings.append(_finding(line, day, line.units, mue, [line.label]))
    for (day, code), lines in sorted(per_date.items()):
        mue = mue_of[(day, code)]
        earlier = [prior.reference for prior in history_on(context, day) if prior.code == code]
        units = sum((line.units for line in lines), Decimal(0)) + len(earlier)
        if units > mue.max_units:
            counted = [line.label for line in lines] + [f"{ref} (already recorded, 1 unit)" for ref in earlier]
            findings.append(_finding(lines[0], day, units, mue, counted))
    # The files are Medicare's edits: for another payer they would not decide the line either.
    if tables is None and payer_of(context).is_medicare:
        over_one = _undecided(context, decided)
        if over_one:
            findings.append(RULE.could_not_check(over_one[0], DATASET_NAME))
    return findings


RULE = Rule(
    rule_id="DN-NCCI-002",
    title="Units above the NCCI MUE",
    severity=Severity.WARNING,
    topic=Topic.LIMITS,
    family=Family.FREQUENCY,
    checks="Units of each code on a date of service stay within the Medicare practitioner MUE in force then "
           "(per line for MAI 1, summed over the date for MAI 2 and 3).",
    source_ids=("CS-10", "FE-07"),
    can_fix=False,
    check=check_ncci_mue,
    precedence=Precedence.CODE_CHOICE,
    data_sets=(DATASET_NAME,),
)
