"""DN-SCOPE-001: state law lets the performer's profession perform dry needling where the service is given.

## What it does
Looks up the state of the service location (Location or Organization address) and each provider type
of the line's performers (PractitionerRole.code / Practitioner.qualification) in
`mappings/scope_of_practice.csv`, on the date of service. A `not-permitted` row is a warning; an
`endorsement-required` row is an `info` card asking to confirm the endorsement is on file, since no
Practitioner.qualification code can prove a state endorsement. A state listed as `silent` (no explicit
law), a state or provider type the table does not list, or a line whose state or performer type is
unknown gives no card.

Decisions (issue 9, finding 10): the performer and the place come from prefetch or, for an order's own
performer and location (no prefetch template can name them), from the FHIR server. When the performer's
profession or the state cannot be read and the table has a row that would decide it (a state that
restricts a profession, or a profession some state restricts), the rule says "not checked" rather than
nothing. Summaries lead with the action and name no payer. Precedence: statutory exclusion (state law),
independent of the payer.

## Why is this bad?
A service outside the performer's scope of practice is not a service any payer should pay, and
performing it can cost the license: physical therapists may not dry needle in California, Hawaii and
New York, nor in Oregon until its rules take effect; in Washington they need the intramuscular needling
endorsement since 2024-06-22.

## Example
A claim line for 20560 performed by a physical therapist (NUCC 225100000X) at a clinic in Sacramento, CA.

## Use instead
Have a provider the state allows perform the needling, or check the current state law (several of the
sources are secondary lists); in Washington keep the therapist's endorsement on file.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

from needlecheck.mappings.scope_of_practice import ScopeRule, ScopeStatus, scope_of_practice, scope_on
from needlecheck.mappings.sources import policy_source
from needlecheck.plugin.context import BillingContext, ServiceLine
from needlecheck.plugin.families import Family
from needlecheck.plugin.findings import Finding, Severity, Topic
from needlecheck.plugin.performer import provider_types
from needlecheck.plugin.rule import Precedence, Rule, from_table
from needlecheck.plugin.wording import iso, join_words, upper_first


def _profession(rule: ScopeRule) -> str:
    return rule.provider_type.replace("-", " ")


def _sources_text(rule: ScopeRule) -> str:
    cited = [policy_source(source_id) for source_id in rule.source_ids]
    return "; ".join(f"[{source.title}]({source.url})" for source in cited)


def _performer_refs(line: ServiceLine) -> str:
    return join_words([f"`{performer.reference}`" for performer in line.performers]) or "the performer"


def _not_permitted(line: ServiceLine, rule: ScopeRule, day: str) -> Finding:
    profession = _profession(rule)
    summary = f"Have an allowed provider needle: a {profession} may not perform dry needling in {rule.state}"
    detail = (
        f"**{upper_first(line.label)}** ({line.code}, {day}) is performed by {_performer_refs(line)}, a "
        f"{profession}, at a location in **{rule.state}**, where state law does not let a {profession} perform "
        f"dry needling. {rule.statement}\n\n"
        f"Have a provider the state allows perform the needling, or confirm the current state law: these "
        f"sources have confidence *{rule.confidence}*. Sources: {_sources_text(rule)}."
    )
    return RULE.finding(line, summary, detail)


def _endorsement_required(line: ServiceLine, rule: ScopeRule, day: str) -> Finding:
    profession = _profession(rule)
    summary = f"Confirm the {profession}'s dry needling endorsement for {rule.state}"
    detail = (
        f"**{upper_first(line.label)}** ({line.code}, {day}) is performed by {_performer_refs(line)}, a "
        f"{profession}, in **{rule.state}**, where a {profession} may perform dry needling only with a state "
        f"endorsement. {rule.statement}\n\n"
        "Confirm that the endorsement is on file: the record's qualification codes cannot show it. "
        f"Sources: {_sources_text(rule)}."
    )
    return RULE.finding(line, summary, detail, severity=Severity.INFO)


_DECIDING = (ScopeStatus.NOT_PERMITTED, ScopeStatus.ENDORSEMENT_REQUIRED)


def _unknown_parts(line: ServiceLine, day: dt.date) -> str | None:
    """What is missing to check the line, when what is missing could decide it (a row of the table that
    restricts a profession in a state), else None."""
    unread = [performer.reference for performer in line.performers if not performer.codes]
    profession_unknown = not line.performers or bool(unread)
    if line.service_state is None:
        if profession_unknown:
            if not _deciding_rows(day):
                return None
            return f"neither {_who(unread)} nor the state where it is furnished could be read from the record"
        types = provider_types(line)  # ProviderType is a StrEnum: its members hash and compare as the table's names
        # Most professions no row restricts: the dates are looked at only for those some row does.
        if any(row.provider_type in types and row.period.covers(day) for row in _restricting_rows()):
            return "the state where it is furnished could not be read from the record (Location or Organization)"
        return None
    # The table is read only when the profession is unknown: a known one was checked against its own row.
    if profession_unknown and any(row.state == line.service_state for row in _deciding_rows(day)):
        return f"{_who(unread)} could not be read from the record, and {line.service_state} restricts some professions"
    return None


def _deciding_rows(day: dt.date) -> list[ScopeRule]:
    """The rows in force on ``day`` that restrict a profession in a state."""
    return [row for row in _restricting_rows() if row.period.covers(day)]


def _restricting_rows() -> tuple[ScopeRule, ...]:
    """The rows that restrict a profession in a state, whatever their dates (picked once per table)."""
    return from_table(scope_of_practice(), _restricting)


def _restricting(table: tuple[ScopeRule, ...]) -> tuple[ScopeRule, ...]:
    return tuple(row for row in table if row.status in _DECIDING)


def _who(unread: list[str]) -> str:
    return f"the profession of {join_words([f'`{ref}`' for ref in unread])}" if unread else "who will perform it"


def check_scope_of_practice(context: BillingContext) -> list[Finding]:
    """One finding per line whose performer's profession may not, or only with an endorsement, needle there;
    "not checked" where the performer or the state could not be read and would have decided it."""
    findings: list[Finding] = []
    for line in context.dry_needling_lines:
        day = context.date_of(line)
        if line.service_state is None or not line.performers:
            missing = _unknown_parts(line, day)
            if missing:
                findings.append(RULE.not_checked(line, missing))
            continue
        rows = [row for kind in sorted(provider_types(line))
                if (row := scope_on(line.service_state, kind.value, day)) is not None]
        forbidden = [row for row in rows if row.status is ScopeStatus.NOT_PERMITTED]
        endorsed = [row for row in rows if row.status is ScopeStatus.ENDORSEMENT_REQUIRED]
        if forbidden:
            finding, row = _not_permitted(line, forbidden[0], iso(day)), forbidden[0]
        elif endorsed:
            finding, row = _endorsement_required(line, endorsed[0], iso(day)), endorsed[0]
        else:
            missing = _unknown_parts(line, day)
            if missing:
                findings.append(RULE.not_checked(line, missing))
            continue
        # The card cites the documents behind this state's row, not every state's.
        findings.append(replace(finding, sources=tuple(policy_source(s) for s in row.source_ids)))
    return findings


RULE = Rule(
    rule_id="DN-SCOPE-001",
    title="Scope of practice",
    severity=Severity.WARNING,
    topic=Topic.CLAIM,
    family=Family.PRACTITIONER,
    checks="The performer's profession may perform dry needling in the state of the service on its date.",
    source_ids=tuple(dict.fromkeys(source for row in scope_of_practice() for source in row.source_ids)),
    can_fix=False,
    check=check_scope_of_practice,
    precedence=Precedence.STATUTORY_EXCLUSION,
)
