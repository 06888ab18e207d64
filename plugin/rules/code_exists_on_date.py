"""DN-CODE-004: 20560 and 20561 exist for dates of service from 2020-01-01.

## What it does
Reports a dry-needling line whose date of service falls before the code's effective date in
``mappings/cpt_codes.csv``.

## Why is this bad?
Before 2020 there was no dry-needling code; the service was reported with the unlisted code 20999.
A claim for a 2019 date of service with 20560 is rejected as an invalid code.

## Example
20560 with servicedDate 2019-11-12.

## Use instead
20999 with a description of the service, as payers required then.
"""

from __future__ import annotations

from needlecheck.mappings.cpt import cpt_codes
from needlecheck.plugin.context import BillingContext
from needlecheck.plugin.families import Family
from needlecheck.plugin.findings import CodeChange, Finding, Severity, Topic
from needlecheck.plugin.rule import Precedence, Rule
from needlecheck.plugin.wording import upper_first

UNLISTED_CODE = "20999"


def check_code_exists_on_date(context: BillingContext) -> list[Finding]:
    """A finding for each dry-needling line dated before its code existed."""
    findings: list[Finding] = []
    for line in context.dry_needling_lines:
        row = cpt_codes()[line.code]
        day = context.date_of(line)
        if row.valid_on(day) or row.effective_from is None:
            continue
        since = row.effective_from.isoformat()
        summary = f"{line.code} did not exist on {day.isoformat()} (valid from {since})"
        detail = (
            f"**{upper_first(line.label)}** has date of service **{day.isoformat()}**, but {line.code} "
            f"is valid from {since}. Dry needling before then was reported with the unlisted code "
            f"{UNLISTED_CODE}."
        )
        fix = CodeChange(line.resource_ref, line.code, UNLISTED_CODE, line.item_sequence)
        findings.append(RULE.finding(line, summary, detail, fix))
    return findings


RULE = Rule(
    rule_id="DN-CODE-004",
    title="Dry-needling code used before it existed",
    severity=Severity.WARNING,
    topic=Topic.CLAIM,
    family=Family.CODING,
    checks="The date of service is on or after the code's effective date (2020-01-01 for 20560/20561).",
    source_ids=("CS-02",),
    can_fix=True,
    check=check_code_exists_on_date,
    precedence=Precedence.CODE_CHOICE,
)
