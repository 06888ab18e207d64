"""DN-PAIR-003: an E/M visit or consultation on the day of dry needling carries modifier 25.

## What it does
Reports a 20560/20561 line when an E/M service of ``mappings/cpt_codes.csv`` (office or outpatient
visits 99202-99215, and consultations 99242-99245 and 99252-99255, with 99241/99251 up to their
deletion on 2023-01-01) is billed for the same date of service without modifier 25 on the E/M line.
When the modifier 25 sits on the dry-needling line instead, the card says so: it belongs on the E/M
line. The pair is row ``em-without-25`` of ``mappings/code_pairs.csv``. Earlier Procedures are not
compared: whether their claim carried 25 is not visible here.

## Why is this bad?
The assessment before needling is part of the procedure. A separate E/M on that day, a consultation
included (consultations are E/M services, EM-CONSULTS-2023), is paid only as a significant, separately
identifiable service marked with modifier 25 (UHC applies this to acupuncture codes; for dry needling
only vendor guidance was found).

## Data
The global period comes from ``mappings/mpfs_indicators.csv`` (the catalog's CS-11 as updated by FE-06):
20560's MPFS global days are XXX from the 2025 fee schedule (FE-06, a code page reproducing CMS's table,
medium confidence), so no global-surgery package applies and the same-day E/M is judged by the ordinary
modifier-25 rule; the card says so and cites FE-06. 20561 has no row (not given), and a 20560 line before
2025 none either: their cards make no claim about a global period.

## Decisions
Medicare and some payers do not pay consultation codes at all; that is not this rule's finding, which
only asks for modifier 25 on whichever E/M code is billed.

## Example
Claim line 1 is 99213 and claim line 2 is 20560, both on 2026-03-02, with no modifier on line 1.

## Use instead
99213-25 with documentation of the separate problem, or no E/M line when the visit was only the
pre-needling assessment.
"""

from __future__ import annotations

from dataclasses import replace

from needlecheck.mappings.mpfs_indicators import mpfs_indicators_for
from needlecheck.mappings.sources import policy_source
from needlecheck.plugin.context import BillingContext, ServiceLine
from needlecheck.plugin.families import Family
from needlecheck.plugin.findings import Finding, Severity, Topic
from needlecheck.plugin.rule import Precedence, Rule
from needlecheck.plugin.same_day import pair_matches
from needlecheck.plugin.wording import join_words

PAIR_ID = "em-without-25"


def _global_period(line: ServiceLine, context: BillingContext) -> tuple[str, tuple[str, ...]]:
    """The sentence on the dry-needling code's global period, and its source, where the MPFS row gives it."""
    indicators = mpfs_indicators_for(line.code, context.date_of(line))
    if indicators is None or indicators.has_global_period:
        return "", ()
    return (f" {line.code}'s MPFS global period is {indicators.global_days} ({indicators.fee_year} fee schedule, "
            f"{indicators.source_id}, {indicators.confidence} confidence): no global-surgery package applies, so "
            "the ordinary modifier-25 rule decides.", (indicators.source_id,))


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
        misplaced = modifier in match.line.modifiers
        if misplaced:
            summary = f"Move modifier {modifier} from {match.line.code} to the E/M line of {day}"
        else:
            summary = f"E/M on {day} without modifier {modifier}"
        where = (f" Modifier {modifier} is on {match.line.label} ({match.line.code}) instead: it marks the E/M "
                 f"service, not the procedure, so move it to {names}." if misplaced else "")
        global_period, global_sources = _global_period(match.line, context)
        detail = (
            f"On **{day}** {match.line.label} ({match.line.code}) is billed with {names}, which has no "
            f"modifier {modifier}.{where} The assessment before needling is part of the procedure; a separate "
            f"E/M that day needs modifier {modifier} and a significant, separately identifiable service in "
            f"the notes (confidence {match.pair.confidence}).{global_period}"
        )
        finding = RULE.finding(match.line, summary, detail, severity=Severity(match.pair.severity))
        cited = (*[s for s in RULE.source_ids if s not in _GLOBAL_SOURCES], *global_sources)
        findings.append(replace(finding, sources=tuple(map(policy_source, cited))))
    return findings


_GLOBAL_SOURCES = ("FE-06",)  # cited on a card only where the line's code and date have the indicator row

RULE = Rule(
    rule_id="DN-PAIR-003",
    title="E/M with dry needling without modifier 25",
    severity=Severity.WARNING,
    topic=Topic.CLAIM,
    family=Family.CODE_PAIRS,
    checks="An E/M visit or consultation (99202-99215, 99242-99245, 99252-99255) on the date of a 20560/20561 "
           "carries modifier 25, on the E/M line.",
    source_ids=("NC-04", "EM-CONSULTS-2023", "FE-06"),
    can_fix=False,
    check=check_evaluation_management_modifier_25,
    precedence=Precedence.MODIFIERS,
)
