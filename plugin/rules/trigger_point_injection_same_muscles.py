"""DN-PAIR-001: trigger-point injection and dry needling are not reported for the same muscles on one date.

## What it does
Compares a 20560/20561 line with a trigger-point injection (20552/20553) of the same date of service
(pair ``tpi-same-muscle`` of ``mappings/code_pairs.csv``) muscle by muscle, using the (muscle, side)
pairs counted from each line's body sites. Shared muscles are a warning. One muscle named on both lines
with the side missing on one of them (20552 on "trapezius", dry needling on "left trapezius"), or on
both, is a *possible* conflict, also a warning, worded as possible: if the sides really differ the fix
is to record them, which takes a moment, and if they do not the line is denied or recouped, so it
deserves the same attention as a proven overlap; it is not an ``info`` because a missing side is the
usual way this overlap reaches a claim. Different muscles are information about documenting distinct
sites (XS or 59 on the column-2 code) only where a loaded NCCI PTP edit with modifier indicator 1 joins
the two codes and the modifier is missing. When the muscles of one side cannot be compared (an earlier
Procedure, or body sites that name no muscle), it asks for a check.

## Why is this bad?
The CPT parenthetical says not to report 20552 or 20553 with 20560 or 20561 for the same muscle(s):
one muscle is either injected or needled without injection in a session. Different muscles in one
session appear reportable.

## Example
20560 for left and right trapezius and 20552 for the left trapezius, both on 2026-03-02.

## Use instead
One code per muscle: the injection code for injected muscles, 20560/20561 for the others, each
line naming its muscles with their sides.
"""

from __future__ import annotations

from needlecheck.mappings.datasets import loaded_dataset
from needlecheck.mappings.muscles import Side
from needlecheck.mappings.ncci_ptp import ALLOWED, DATASET_NAME, PtpEdits
from needlecheck.plugin.context import BillingContext, ServiceLine
from needlecheck.plugin.families import Family
from needlecheck.plugin.findings import Finding, Severity, Topic
from needlecheck.plugin.rule import Precedence, Rule
from needlecheck.plugin.same_day import PairMatch, SameDayService, pair_matches
from needlecheck.plugin.wording import join_words, muscle_list

PAIR_ID = "tpi-same-muscle"
DISTINCT_SITE_MODIFIERS = frozenset({"XS", "59"})


def _comparable(line: ServiceLine | None) -> bool:
    return line is not None and line.muscles.established and line.muscles.count > 0


def _distinct_site_note(match: PairMatch, other: SameDayService) -> str | None:
    """Text about XS/59 when a loaded PTP edit with indicator 1 joins the codes and the modifier is missing."""
    edits: PtpEdits | None = loaded_dataset(DATASET_NAME)
    if edits is None or other.line is None:
        return None
    edit = edits.edit_between(match.line.code, other.code, match.day)
    if edit is None or edit.modifier_indicator != ALLOWED:
        return None
    column_2 = match.line if edit.column_2 == match.line.code else other.line
    if DISTINCT_SITE_MODIFIERS & set(column_2.modifiers):
        return None
    return (f"An NCCI PTP edit ({edit.column_1}/{edit.column_2}, modifier indicator 1) joins these codes: "
            f"document the distinct muscles and add XS (or 59) to {column_2.label} ({edit.column_2}).")


def _same_and_maybe_same(mine: ServiceLine, theirs: ServiceLine) -> tuple[list[tuple[str, Side]], list[str]]:
    """The (muscle, side) pairs both lines name, and the muscles both name where a side is missing."""
    ours, others = set(mine.muscles.muscles), set(theirs.muscles.muscles)
    same = sorted((muscle, side) for muscle, side in ours & others if side is not Side.UNSPECIFIED)
    maybe = sorted({muscle for muscle, side in ours for other_muscle, other_side in others
                    if muscle == other_muscle and Side.UNSPECIFIED in (side, other_side)
                    and (muscle, side) not in same})
    return same, maybe


def _finding_for(match: PairMatch) -> Finding | None:
    line, day = match.line, match.day.isoformat()
    shared: list[str] = []
    possibly: list[str] = []
    unsure: list[str] = []
    notes: list[str] = []
    for other in match.others:
        if not (_comparable(line) and _comparable(other.line)):
            unsure.append(other.label)
            continue
        assert other.line is not None
        same, maybe = _same_and_maybe_same(line, other.line)
        if same:
            shared.append(f"{muscle_list(same)} with {other.label}")
        elif maybe:
            possibly.append(f"{join_words(maybe)} with {other.label}")
        elif note := _distinct_site_note(match, other):
            notes.append(note)
    if shared:
        summary = f"Dry needling and trigger-point injection of the same muscles on {day}"
        detail = (f"On **{day}** {line.label} ({line.code}) shares {join_words(shared)}. Do not report 20552/20553 "
                  "with 20560/20561 for the same muscle(s): a muscle is injected or needled without injection.")
        return RULE.finding(line, summary, detail)
    if possibly:
        summary = f"Check the sides: injection and dry needling on {day} may treat the same muscle"
        detail = (f"On **{day}** {line.label} ({line.code}) names {join_words(possibly)}, where one of the two "
                  "gives no side, so they may be the same muscle. Do not report 20552/20553 with 20560/20561 for "
                  "the same muscle(s); if the sides differ, record the side on both lines (left and right are "
                  "two muscles).")
        return RULE.finding(line, summary, detail)
    if unsure:
        summary = f"Trigger-point injection on {day}: check the muscles differ"
        detail = (f"On **{day}** {line.label} ({line.code}) meets {join_words(unsure)}, whose muscles could not be "
                  "compared. 20552/20553 and 20560/20561 may be reported together only for different muscles; "
                  "make sure each line names its muscles.")
        return RULE.finding(line, summary, detail, severity=Severity.INFO)
    if notes:
        summary = "Injection and dry needling of different muscles: mark distinct sites"
        return RULE.finding(line, summary, " ".join(notes), severity=Severity.INFO)
    return None


def check_trigger_point_injection_same_muscles(context: BillingContext) -> list[Finding]:
    """One finding per line whose muscles meet a same-day trigger-point injection (or dry needling)."""
    return [finding for match in pair_matches(context, PAIR_ID) if (finding := _finding_for(match))]


RULE = Rule(
    rule_id="DN-PAIR-001",
    title="Trigger-point injection and dry needling of the same muscles",
    severity=Severity.WARNING,
    topic=Topic.CLAIM,
    family=Family.CODE_PAIRS,
    checks="20552/20553 and 20560/20561 on one date of service treat different muscles.",
    source_ids=("NC-02",),
    can_fix=False,
    check=check_trigger_point_injection_same_muscles,
    precedence=Precedence.CODE_CHOICE,
    data_sets=(DATASET_NAME,),
)
