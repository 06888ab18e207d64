"""DN-PAIR-003: an office E/M on the day of dry needling carries modifier 25.

## What it does
Reports a 20560/20561 line when an office or outpatient E/M visit (99202-99215, from
``mappings/cpt_codes.csv``) is billed for the same date of service without modifier 25 on the E/M
line. The pair is row ``em-without-25`` of ``mappings/code_pairs.csv``. Earlier Procedures are not
compared: whether their claim carried 25 is not visible here.

## Why is this bad?
The assessment before needling is part of the procedure. A separate E/M on that day is paid only
as a significant, separately identifiable service marked with modifier 25 (UHC applies this to
acupuncture codes; for dry needling only vendor guidance was found). The global period of
20560/20561, which decides this under the global-surgery rules, is not confirmed.

## Example
Claim line 1 is 99213 and claim line 2 is 20560, both on 2026-03-02, with no modifier on line 1.

## Use instead
99213-25 with documentation of the separate problem, or no E/M line when the visit was only the
pre-needling assessment.
"""

from __future__ import annotations

from needlecheck.plugin.context import BillingContext
from needlecheck.plugin.families import Family
from needlecheck.plugin.findings import Finding, Severity, Topic
from needlecheck.plugin.rule import Rule
from needlecheck.plugin.same_day import pair_matches
from needlecheck.plugin.wording import join_words, upper_first

PAIR_ID = "em-without-25"


def check_evaluation_management_modifier_25(context: BillingContext) -> list[Finding]:
    """One finding per dry-needling line whose date carries an E/M line without the pair's modifier."""
    findings: list[Finding] = []
    for match in pair_matches(context, PAIR_ID, with_history=False):
        modifier = match.pair.required_modifier or ""
        if match.line.code not in match.pair.first:
            continue  # an E/M line alone meets no dry-needling line of this request
        bare = [other for other in match.others if modifier not in other.modifiers]
        if not bare:
            continue
        names = join_words([other.label for other in bare])
        day = match.day.isoformat()
        summary = f"{upper_first(match.line.label)}: E/M on {day} without modifier {modifier}"
        detail = (
            f"On **{day}** {match.line.label} ({match.line.code}) is billed with {names}, which has no "
            f"modifier {modifier}. The assessment before needling is part of the procedure; a separate E/M "
            f"that day needs modifier {modifier} and a significant, separately identifiable service in "
            f"the notes (confidence {match.pair.confidence})."
        )
        findings.append(RULE.finding(match.line, summary, detail, severity=Severity(match.pair.severity)))
    return findings


RULE = Rule(
    rule_id="DN-PAIR-003",
    title="E/M with dry needling without modifier 25",
    severity=Severity.WARNING,
    topic=Topic.CLAIM,
    family=Family.CODE_PAIRS,
    checks="An office/outpatient E/M (99202-99215) on the date of a 20560/20561 carries modifier 25.",
    source_ids=("NC-04",),
    can_fix=False,
    check=check_evaluation_management_modifier_25,
)
