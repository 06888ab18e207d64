"""DN-FREQ-001: the patient's dry needling sessions stay within the payer's frequency caps.

## What it does
Counts the patient's sessions (distinct dates of service with 20560/20561, and for Medicare also
97810-97814) from earlier Procedures and from the lines being checked, and compares each date of service
with the caps of the payer's pack in ``mappings/frequency_limits.csv``:

- Medicare and Medicare Advantage (NCD 30.3.3): sessions 13-20 of the year need modifier KX (and
  documented improvement); more than 12 sessions in 90 days need KX; past 20 in the year nothing is
  covered. The year starts with the first session and ends when 11 full months have passed after the
  month of that session (MC-05, Priority Health's worked example: first session 2020-03-21, next year
  from 2021-03-01); a per-patient rolling year, not a calendar year.
- Washington L&I: a 4th to 6th treatment needs written justification; past 6 nothing is covered.

Decisions (issue 9): for Medicare the caps apply only to lines NCD 30.3.3 could cover (not a line a
physical therapist or chiropractor furnished, which DN-MCR-004 reports, nor one whose diagnoses cannot be
low back pain, which DN-MCR-001 reports): KX on a line no session count makes payable is wrong advice.
At order-sign (an order carries no modifiers) the finding asks to document the improvement sessions
13-20 need, not to add KX. Past the last cap, a Medicare line gets the ABN advice (GA with a signed ABN,
GZ without; for a line that already declares GA, keep the ABN on file) rather than "not covered" alone;
that finding is decisive (the engine drops the line's payer documentation findings). Precedence:
modifiers. Summaries lead with the action and name no payer.

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
from needlecheck.plugin.medicare import DECLARED_DENIAL, ncd_can_cover, not_covered_guidance
from needlecheck.plugin.payer import Payer, PayerClass, payer_of
from needlecheck.plugin.rule import Precedence, Rule
from needlecheck.plugin.sessions import (
    first_day_of_next_ncd_year,
    ncd_year_start,
    session_dates,
    sessions_in_window,
)
from needlecheck.plugin.wording import upper_first


@dataclass(frozen=True)
class _Excess:
    """One cap a session goes past: ``beyond_all`` when no extension makes it payable."""

    limit: FrequencyLimit
    count: int
    beyond_all: bool
    window_words: str


def _window_words(limit: FrequencyLimit, sessions: tuple[dt.date, ...], day: dt.date) -> str:
    if limit.window == NCD_YEAR:
        start = ncd_year_start(sessions, day)
        return (f"the NCD year that began {start.isoformat()} (it runs until 11 full months have passed after "
                f"that month, MC-05: a new year can start on {first_day_of_next_ncd_year(start).isoformat()})")
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


def _advice(excess: _Excess, ordered: bool) -> str:
    limit = excess.limit
    if excess.beyond_all:
        return (f"this is session **{excess.count}** in {excess.window_words}, past the cap of "
                f"{limit.extended_sessions}: it is not covered")
    if limit.extension == KX_MODIFIER and ordered:
        return (f"this is session **{excess.count}** in {excess.window_words}, past {limit.sessions}: sessions "
                f"past {limit.sessions} are covered only for a patient who is improving, so document the "
                "improvement (pain and function measures) before the session")
    if limit.extension == KX_MODIFIER:
        return (f"this is session **{excess.count}** in {excess.window_words}, past {limit.sessions}: add "
                "modifier KX and document the patient's improvement")
    return (f"this is treatment **{excess.count}** in {excess.window_words}, past {limit.sessions}: send the "
            f"written justification the payer requires (up to {limit.extended_sessions})")


def _beyond_all_summary(payer: Payer, line: ServiceLine, count: int, ordered: bool) -> tuple[str, Severity]:
    past = f"session {count} is past the cap"
    declared = set() if ordered else DECLARED_DENIAL & {modifier.upper() for modifier in line.modifiers}
    if payer.payer_class is PayerClass.MEDICARE_FFS:
        if "GA" in declared:
            return f"Keep the signed ABN on file: {past}, and GA declares it not covered", Severity.INFO
        if "GZ" in declared:
            return f"Bill GA instead of GZ only with a signed ABN: {past}, not covered", Severity.INFO
        if ordered:
            return f"Give an ABN before the service, or do not schedule it: {past}", Severity.WARNING
        return f"Give an ABN and bill GA, or expect a denial: {past}", Severity.WARNING
    if payer.payer_class is PayerClass.MEDICARE_ADVANTAGE:
        return f"Ask the plan before the service: {past} and not covered", Severity.WARNING
    return f"Expect a denial: treatment {count} is past the payer's cap", Severity.WARNING


def _finding(line: ServiceLine, day: dt.date, excesses: list[_Excess], payer: Payer, ordered: bool) -> Finding:
    worst = excesses[0]
    severity = Severity.WARNING
    if worst.beyond_all:
        summary, severity = _beyond_all_summary(payer, line, worst.count, ordered)
    elif worst.limit.extension == KX_MODIFIER and ordered:
        summary = f"Document the patient's improvement: session {worst.count} is past {worst.limit.sessions}"
    elif worst.limit.extension == KX_MODIFIER:
        summary = f"Add KX and document the improvement: session {worst.count} is past {worst.limit.sessions}"
    else:
        summary = (f"Send the payer's written justification: treatment {worst.count} is past "
                   f"{worst.limit.sessions}")
    reasons = "; ".join(_advice(excess, ordered) for excess in excesses)
    payer_words = payer.name or payer.pack or str(payer.payer_class)
    detail = (
        f"{upper_first(line.label)} ({line.code}) on **{day.isoformat()}**, payer **{payer_words}**: {reasons}. "
        "Sessions are counted as distinct dates of service from the patient's earlier Procedures and the lines "
        "of this request. " + " ".join(f"{excess.limit.statement} ({excess.limit.source_id})" for excess in excesses)
    )
    if worst.beyond_all and payer.is_medicare:
        detail += "\n\n" + not_covered_guidance(payer, None if ordered else line, ordered)
    sources: list[PolicySource] = []
    for excess in excesses:
        if excess.limit.source not in sources:
            sources.append(excess.limit.source)
        if excess.limit.window == NCD_YEAR and policy_source("MC-05") not in sources:
            sources.append(policy_source("MC-05"))
    if worst.beyond_all and payer.is_medicare:
        sources += [source for source in map(policy_source, ("MC-11", "MC-13")) if source not in sources]
    finding = RULE.finding(line, summary, detail, severity=severity, decisive=worst.beyond_all)
    return replace(finding, sources=tuple(sources))


def _lines_capped(context: BillingContext, payer: Payer) -> tuple[ServiceLine, ...]:
    """The lines the caps apply to: for Medicare only those NCD 30.3.3 could cover (a physical therapist's
    line, or one for neck pain, is not paid at any session count, so KX would be wrong advice)."""
    if payer.is_medicare:
        return tuple(line for line in context.dry_needling_lines if ncd_can_cover(context, line))
    return context.dry_needling_lines


def check_session_frequency(context: BillingContext) -> list[Finding]:
    """One finding per date of service whose dry-needling session goes past a cap of the payer's pack."""
    payer = payer_of(context)
    lines = _lines_capped(context, payer)
    if not lines or payer.pack is None:
        return []
    ordered = context.hook == "order-sign"
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
            findings.append(_finding(day_lines[0], day, excesses, payer, ordered))
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
    precedence=Precedence.MODIFIERS,
    needs_coverage=True,
)
