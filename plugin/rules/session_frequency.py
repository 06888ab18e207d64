"""DN-FREQ-001: the patient's dry needling sessions stay within the payer's frequency caps.

## What it does
Counts the patient's sessions (distinct dates of service with 20560/20561, and for Medicare also
97810-97814) from earlier Procedures and from the lines being checked, and compares each date of service
with the caps of the payer's pack in ``mappings/frequency_limits.csv``:

- Medicare and Medicare Advantage (NCD 30.3.3): sessions 13-20 of the year need modifier KX (and
  documented improvement); more than 12 sessions in 90 days need KX; past 20 in the year nothing is
  covered. The year starts with the first session and ends when 11 full months have passed after the
  month of that session.
- Washington L&I: a 4th to 6th treatment needs written justification; past 6 nothing is covered.

## Why is this bad?
Sessions over the cap are denied. Under Medicare a session 13-20 without KX is denied even when the
patient improved, and a 21st session in the year is never paid.

## Example
A Medicare claim for 20560 on 2026-04-02 without KX, when the patient already had 12 dry needling
sessions since 2026-01-05.

## Use instead
Append KX to sessions 13-20 and document the improvement; stop at 20 sessions in the NCD year (the patient
may sign an ABN for further sessions). For Washington L&I, send the justification before the 4th
treatment.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace

from needlecheck.mappings.frequency_limits import KX_MODIFIER, NCD_YEAR, FrequencyLimit, frequency_limits
from needlecheck.mappings.sources import PolicySource, policy_source
from needlecheck.plugin.context import BillingContext, ServiceLine
from needlecheck.plugin.families import Family
from needlecheck.plugin.findings import Finding, Severity, Topic
from needlecheck.plugin.payer import payer_of
from needlecheck.plugin.rule import Rule
from needlecheck.plugin.sessions import ncd_year_start, session_dates, sessions_in_window


@dataclass(frozen=True)
class _Excess:
    """One cap a session goes past: ``beyond_all`` when no extension makes it payable."""

    limit: FrequencyLimit
    count: int
    beyond_all: bool
    window_words: str


def _window_words(limit: FrequencyLimit, sessions: tuple[dt.date, ...], day: dt.date) -> str:
    if limit.window == NCD_YEAR:
        return f"the NCD year that began {ncd_year_start(sessions, day).isoformat()}"
    if limit.window_days is not None:
        return f"the {limit.window_days} days ending {day.isoformat()}"
    return "all of the patient's treatments"


def _excesses(context: BillingContext, limits: list[FrequencyLimit], day: dt.date, extended: bool) -> list[_Excess]:
    found: list[_Excess] = []
    for limit in limits:
        sessions = session_dates(context, limit.counted_families)
        count = sessions_in_window(limit, sessions, day)
        if count <= limit.sessions:
            continue
        beyond_all = limit.extended_sessions is not None and count > limit.extended_sessions
        # Only a KX modifier is visible on a claim; a written justification never is, so it is always asked for.
        if not beyond_all and limit.extension == KX_MODIFIER and extended:
            continue
        found.append(_Excess(limit, count, beyond_all, _window_words(limit, sessions, day)))
    return sorted(found, key=lambda excess: not excess.beyond_all)


def _advice(excess: _Excess) -> str:
    limit = excess.limit
    if excess.beyond_all:
        return (f"this is session **{excess.count}** in {excess.window_words}, past the cap of "
                f"{limit.extended_sessions}: it is not covered")
    if limit.extension == KX_MODIFIER:
        return (f"this is session **{excess.count}** in {excess.window_words}, past {limit.sessions}: add "
                "modifier KX and document the patient's improvement")
    return (f"this is treatment **{excess.count}** in {excess.window_words}, past {limit.sessions}: send the "
            f"written justification the payer requires (up to {limit.extended_sessions})")


def _finding(line: ServiceLine, day: dt.date, excesses: list[_Excess], payer_words: str) -> Finding:
    worst = excesses[0]
    if worst.beyond_all:
        summary = f"Session {worst.count} on {day.isoformat()} is past {payer_words}'s cap: not covered"
    elif worst.limit.extension == KX_MODIFIER:
        summary = f"Session {worst.count} on {day.isoformat()} needs modifier KX and documented improvement"
    else:
        summary = f"Treatment {worst.count} on {day.isoformat()} needs the payer's written justification"
    reasons = "; ".join(_advice(excess) for excess in excesses)
    detail = (
        f"{line.label} ({line.code}) on **{day.isoformat()}**, payer **{payer_words}**: {reasons}. Sessions are "
        "counted as distinct dates of service from the patient's earlier Procedures and the lines of this "
        "request. " + " ".join(f"{excess.limit.statement} ({excess.limit.source_id})" for excess in excesses)
    )
    sources: list[PolicySource] = []
    for excess in excesses:
        if excess.limit.source not in sources:
            sources.append(excess.limit.source)
        if excess.limit.window == NCD_YEAR and policy_source("MC-05") not in sources:
            sources.append(policy_source("MC-05"))
    return replace(RULE.finding(line, summary, detail), sources=tuple(sources))


def check_session_frequency(context: BillingContext) -> list[Finding]:
    """One finding per date of service whose dry-needling session goes past a cap of the payer's pack."""
    lines = context.dry_needling_lines
    payer = payer_of(context)
    if not lines or payer.pack is None:
        return []
    lines_by_date: dict[dt.date, list[ServiceLine]] = {}
    for line in lines:
        lines_by_date.setdefault(context.date_of(line), []).append(line)
    findings: list[Finding] = []
    for day, day_lines in sorted(lines_by_date.items()):
        limits = [limit for limit in frequency_limits() if limit.pack == payer.pack and limit.period.covers(day)]
        if not limits:
            continue
        extended = any("KX" in (modifier.upper() for modifier in line.modifiers) for line in day_lines)
        excesses = _excesses(context, limits, day, extended)
        if excesses:
            findings.append(_finding(day_lines[0], day, excesses, payer.name or payer.pack))
    return findings


RULE = Rule(
    rule_id="DN-FREQ-001",
    title="Sessions within the payer's frequency caps",
    severity=Severity.WARNING,
    topic=Topic.LIMITS,
    family=Family.FREQUENCY,
    checks="Medicare: sessions 13-20 in the NCD year or past 12 in 90 days carry KX, none past 20; "
           "Washington L&I: past 3 treatments need justification, none past 6.",
    source_ids=("MC-03", "MC-04", "MC-05", "PY-10"),
    can_fix=False,
    check=check_session_frequency,
)
