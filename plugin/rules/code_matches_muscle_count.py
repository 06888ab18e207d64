"""DN-CODE-001: the dry-needling code must match the number of muscles treated.

## What it does
Counts the distinct muscles named in the body sites of an order or claim line (left and right of one
muscle are two muscles; several points in one muscle count once) and compares the count with the code:
20560 covers 1 or 2 muscles, 20561 covers 3 or more.

## Why is this bad?
The muscle count, not the number of needles, decides the code. A line whose code does not match the
documented muscles is denied or recouped on review.

## Example
20560 billed for left trapezius, right trapezius and left levator scapulae (3 muscles).

## Use instead
20561, which the card offers as a one-click change of the draft order or claim.

## Decisions
Only verified SNOMED CT rows (``verified = yes`` in ``mappings/snomed_muscles.csv``) may decide a
recommended code change. The 54 ``partial`` muscle rows (UBERON cross-references such as gastrocnemius
181700004, soleus 181702007, tibialis anterior 181696007) still count, but when the code change depends
on them the finding is an ``info`` card that names the unverified codes and asks to confirm them, with
no suggested change. A change still stands when the verified muscles alone decide it (3 or more
verified muscles make 20561 whatever the unverified codes name).
"""

from __future__ import annotations

import datetime as dt

from needlecheck.mappings.cpt import dry_needling_code_for
from needlecheck.plugin.context import BillingContext
from needlecheck.plugin.families import Family
from needlecheck.plugin.findings import CodeChange, Finding, Severity, Topic
from needlecheck.plugin.muscles import MuscleCount
from needlecheck.plugin.rule import Precedence, Rule
from needlecheck.plugin.wording import join_words, muscle_list, upper_first


def _decided_by_verified_rows(muscles: MuscleCount, expected: str, day: dt.date) -> bool:
    if muscles.confirmed:
        return True
    confirmed = muscles.confirmed_count
    return confirmed >= 3 and dry_needling_code_for(confirmed, day) == expected


def _unverified_codes(muscles: MuscleCount) -> str:
    return join_words([f"{site.concept.sctid} ({site.muscle})" for site in muscles.unconfirmed
                       if site.concept is not None])


def check_code_matches_muscle_count(context: BillingContext) -> list[Finding]:
    """A finding with a code change for each line whose code does not fit its muscle count."""
    findings: list[Finding] = []
    for line in context.dry_needling_lines:
        muscles = line.muscles
        # Unnamed sites hide muscles, so only a count of 3 or more named muscles is certain enough
        # to correct the code; below that the documentation card asks for the muscles instead.
        if muscles.count == 0 or (not muscles.established and muscles.count < 3):
            continue
        expected = dry_needling_code_for(muscles.count, context.date_of(line))
        if expected is None or expected == line.code:
            continue
        noun = "muscle" if muscles.count == 1 else "muscles"
        if not _decided_by_verified_rows(muscles, expected, context.date_of(line)):
            summary = f"Confirm the muscles: {muscles.count} {noun} would mean {expected}, not {line.code}"
            detail = (
                f"**{upper_first(line.label)}** is coded **{line.code}**. Its body sites name "
                f"**{muscles.count} {noun}** ({muscle_list(muscles.muscles)}), which would mean **{expected}**, "
                f"but that count rests on SNOMED CT codes whose meaning is not verified: "
                f"{_unverified_codes(muscles)}. Confirm that each names that single muscle (or record the "
                "verified code) before changing the code; no change is suggested until then."
            )
            findings.append(RULE.finding(line, summary, detail, severity=Severity.INFO))
            continue
        summary = f"{muscles.count} {noun} treated, so bill {expected}, not {line.code}"
        detail = (
            f"**{upper_first(line.label)}** is coded **{line.code}**, but the body sites name "
            f"**{muscles.count} {noun}**: {muscle_list(muscles.muscles)}. "
            f"{expected} is the code for this many muscles; the number of needles does not matter, "
            "and left and right of one muscle are two muscles."
        )
        fix = CodeChange(line.resource_ref, line.code, expected, line.item_sequence)
        findings.append(RULE.finding(line, summary, detail, fix))
    return findings


RULE = Rule(
    rule_id="DN-CODE-001",
    title="Code does not match the muscle count",
    severity=Severity.WARNING,
    topic=Topic.CLAIM,
    family=Family.CODING,
    checks="20560 is billed for 1-2 distinct muscles and 20561 for 3 or more, counted from SNOMED CT body sites.",
    source_ids=("CS-01", "CS-04"),
    can_fix=True,
    check=check_code_matches_muscle_count,
    precedence=Precedence.CODE_CHOICE,
)
