"""DN-UNIT-001: 20560 and 20561 are reported with one unit per date of service.

## What it does
Reports a dry-needling line with a quantity above one, and the same dry-needling code appearing twice
on one date of service (two lines, or a line and an earlier Procedure of that date; a Procedure counts
once however often the record shows it, and the Procedure a line bills is not an earlier one).

When the lines of the date are claim lines and their body sites decide the total
(``plugin.same_day.dry_needling_session``: 3 or more named muscles, or a complete count of at most 2),
the card says what the muscles add up to and offers, as the recommended change, one line with the code
for the total: the first line takes that code and the other lines' Procedures and diagnoses, and the
other lines are removed. Two 20560 lines for 2 muscles each are one 20561 line for 4 muscles. With an
earlier Procedure that day (whose muscles the history does not carry), or muscles that cannot all be
counted, it asks for the total instead and offers no change. Orders get the total but no change: an
order is cancelled, not merged.

When the repeated lines split the sides (RT on one, LT on another), the card says that does not make two
services, citing the code's MPFS bilateral surgery indicator 0 where ``mappings/mpfs_indicators.csv`` has
it (20560 from 2025, FE-06) and CS-08 otherwise: both sides are muscles of one session, one unit.

## Why is this bad?
The codes describe the whole session ("1 or 2 muscles", "3 or more muscles"), so more muscles change
the code, never the units. Extra units or duplicate lines are denied.

## Example
20561 with quantity 2 for six muscles.

## Use instead
20561 with quantity 1; one line for the session (20561 for 2 + 2 muscles on two 20560 lines).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import replace

from needlecheck.mappings.mpfs_indicators import mpfs_indicators_for
from needlecheck.mappings.sources import policy_source
from needlecheck.plugin.context import BillingContext, ServiceLine
from needlecheck.plugin.families import Family
from needlecheck.plugin.findings import Finding, Severity, Topic
from needlecheck.plugin.rule import Precedence, Rule
from needlecheck.plugin.same_day import dry_needling_session, history_on
from needlecheck.plugin.wording import join_words, upper_first


def _split_sides(lines: list[ServiceLine], code: str, day: dt.date) -> tuple[str, tuple[str, ...]]:
    """The sentence (and its sources) for one side on each line: RT on one line and LT on another."""
    right = [line for line in lines if "RT" in line.modifiers]
    left = [line for line in lines if "LT" in line.modifiers]
    if not right or not left or (len(right) == len(left) == 1 and right[0] is left[0]):
        return "", ()
    indicators = mpfs_indicators_for(code, day)
    if indicators is not None and not indicators.bilateral_adjustment:
        return (f" RT and LT on separate lines do not make two services: the MPFS bilateral surgery indicator of "
                f"{code} is {indicators.bilateral_surgery} ({indicators.fee_year} fee schedule, "
                f"{indicators.source_id}, {indicators.confidence} confidence), so both sides are muscles of one "
                "session, billed as one unit.", (indicators.source_id,))
    return (" RT and LT on separate lines do not make two services: both sides are muscles of one session, "
            "billed as one unit.", ("CS-08",))


def check_one_unit_per_date(context: BillingContext) -> list[Finding]:
    """Findings for quantities above one and for one code repeated on one date."""
    findings: list[Finding] = []
    for line in context.dry_needling_lines:
        if line.units > 1:
            summary = f"{line.code} is one unit per session, not {line.units:g}"
            detail = (
                f"**{upper_first(line.label)}** reports **{line.units:g} units** of {line.code}. The code "
                "covers the whole session; more muscles change the code (20560 or 20561), not the units."
            )
            findings.append(replace(RULE.finding(line, summary, detail),
                                sources=tuple(map(policy_source, _ALWAYS_CITED))))
    repeats: dict[tuple[dt.date, str], list[ServiceLine]] = defaultdict(list)
    for line in context.dry_needling_lines:
        repeats[(context.date_of(line), line.code)].append(line)
    for (day, code), lines in sorted(repeats.items()):
        earlier = [prior.reference for prior in history_on(context, day) if prior.code == code]
        if len(lines) + len(earlier) < 2:
            continue
        where = [line.label for line in lines] + [f"{ref} (already recorded)" for ref in earlier]
        session = dry_needling_session(context, day)
        summary = f"{code} appears {len(where)} times on {day.isoformat()}: report it once for the session"
        if session.code is not None:
            summary = (f"Bill one {session.code} {session.unit_word} for {day.isoformat()}: {code} appears "
                       f"{len(where)} times, {session.muscles.count} muscles in all")
        sides, side_sources = _split_sides(lines, code, day)
        detail = (
            f"On **{day.isoformat()}**, {code} is reported by {join_words(where)}. One session is one "
            f"line with one unit, for all the muscles treated that day.{sides} {session.advice}"
        )
        finding = RULE.finding(session.lines[0], summary, detail, session.merge)
        findings.append(replace(finding, sources=tuple(map(policy_source, (*_ALWAYS_CITED, *side_sources)))))
    return findings


_ALWAYS_CITED = ("CS-09",)  # FE-06 or CS-08 only where the lines split RT and LT

RULE = Rule(
    rule_id="DN-UNIT-001",
    title="More than one unit of 20560/20561 on one date",
    severity=Severity.WARNING,
    topic=Topic.CLAIM,
    family=Family.CODING,
    checks="Each date of service has at most one unit of 20560 or 20561 (quantity and repeated lines).",
    source_ids=("CS-09", "FE-06", "CS-08"),
    can_fix=True,
    check=check_one_unit_per_date,
    precedence=Precedence.CODE_CHOICE,
)
