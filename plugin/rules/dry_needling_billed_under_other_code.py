"""DN-CODE-005: dry needling on or after 2020-01-01 is billed as 20560/20561, not under an older substitute.

## What it does
Reports a line whose code is one that was used for dry needling before the dedicated codes existed
(unlisted 20999, manual therapy 97140, trigger-point injection 20552/20553, acupuncture
97810-97814, tendon injections 20550/20551; ``mappings/dry_needling_substitutes.csv``) when the
record's words for the service (code display, text) say dry needling ("dry needling", "needle
insertion without injection", "intramuscular manual therapy", "intramuscular needling"), and its date
of service is on or after 2020-01-01. Lines that record an injected substance are real injections
and are left alone. When the line's muscles are all named, the finding offers the dry-needling code
for that count.

## Why is this bad?
Since 2020-01-01 dry needling has its own codes. CPT Assistant said 20550-20553 are not for dry
needling, dry needling is not acupuncture, and APTA said 97140 must not be used for it; 20999 was
the pre-2020 route only.

## Example
97140 on 2026-03-02 with the text "trigger point dry needling, left and right trapezius".

## Use instead
20560 for 1-2 muscles, 20561 for 3 or more.
"""

from __future__ import annotations

import re

from needlecheck.mappings.cpt import cpt_codes, dry_needling_code_for
from needlecheck.mappings.dry_needling_substitutes import Substitute, substitute_for, substitutes
from needlecheck.plugin.context import BillingContext, ServiceLine
from needlecheck.plugin.families import Family
from needlecheck.plugin.findings import CodeChange, Finding, Severity, Topic
from needlecheck.plugin.rule import Precedence, Rule, from_table
from needlecheck.plugin.wording import upper_first

# Words of the descriptor and the names under which dry needling is taught and regulated.
DRY_NEEDLING_WORDS = (
    "dry needling",
    "dry needle",
    "needle insertion without injection",
    "needle insertions without injections",
    "intramuscular manual therapy",
    "intramuscular needling",
)
_NOT_LETTERS = re.compile(r"[^a-z]+")


def _plain(text: str) -> str:
    return " " + _NOT_LETTERS.sub(" ", text.lower().replace("(s)", "s")).strip() + " "


def says_dry_needling(line: ServiceLine) -> bool:
    """Whether any of the line's descriptions names dry needling."""
    return any(f" {word} " in _plain(text) for text in line.described_as for word in DRY_NEEDLING_WORDS)


def _substitute_codes(rows: tuple[Substitute, ...]) -> frozenset[str]:
    """Every code some row names, whatever its dates: a code outside it is never a substitute."""
    return frozenset(code for row in rows for code in row.codes)


def check_dry_needling_billed_under_other_code(context: BillingContext) -> list[Finding]:
    """A finding for each line that describes dry needling under a substitute code on or after 2020-01-01."""
    findings: list[Finding] = []
    substitutable = from_table(substitutes(), _substitute_codes)
    for line in context.lines:
        day = context.date_of(line)
        if line.code not in substitutable or line.injected_substances or substitute_for(line.code, day) is None \
                or not says_dry_needling(line):
            continue
        muscles = line.muscles
        right_code = dry_needling_code_for(muscles.count, day) if muscles.confirmed and muscles.count else None
        meaning = cpt_codes()[line.code].meaning
        choice = f"**{right_code}** for the {muscles.count} muscle(s) named" if right_code else (
            "20560 (1-2 muscles) or 20561 (3 or more), by the number of muscles treated")
        summary = f"Dry needling billed as {line.code}; use 20560/20561"
        detail = (
            f"**{upper_first(line.label)}** describes dry needling but is billed as {line.code} ({meaning}). "
            f"For dates of service from 2020-01-01 dry needling is reported with its own codes: {choice}."
        )
        fix = CodeChange(line.resource_ref, line.code, right_code, line.item_sequence) if right_code else None
        findings.append(RULE.finding(line, summary, detail, fix))
    return findings


RULE = Rule(
    rule_id="DN-CODE-005",
    title="Dry needling billed under another code",
    severity=Severity.WARNING,
    topic=Topic.CLAIM,
    family=Family.CODING,
    checks="From 2020-01-01, a service described as dry needling is not billed as 20999, 97140, 20550-20553 "
           "or 97810-97814.",
    source_ids=("CS-02", "CS-02-SUBSTITUTES", "NC-08"),
    can_fix=True,
    check=check_dry_needling_billed_under_other_code,
    precedence=Precedence.CODE_CHOICE,
)
