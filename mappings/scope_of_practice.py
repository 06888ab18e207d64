"""Whether state law lets a kind of provider perform dry needling, by state and date.

One row of ``scope_of_practice.csv`` is one fact: in ``state``, for ``provider_type``, dry needling is
``not-permitted``, ``endorsement-required``, ``permitted`` or ``silent`` (no explicit law) during the
row's effective period. A state or provider type without a row is unknown, not permitted. Provider
types are the values of ``plugin.performer.ProviderType``; a test keeps the two lists equal.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from pathlib import Path

from needlecheck.mappings.errors import MappingError
from needlecheck.mappings.provenance import parse_confidence, parse_source_ids
from needlecheck.mappings.sources import PolicySource
from needlecheck.mappings.tables import DATA_DIR, EffectivePeriod, parse_choice, parse_period, read_table

SCOPE_FILE = DATA_DIR / "scope_of_practice.csv"

PROVIDER_TYPES = frozenset({
    "physician", "physician-assistant", "nurse-practitioner", "clinical-nurse-specialist",
    "physical-therapist", "physical-therapist-assistant", "chiropractor", "acupuncturist",
})
# USPS codes of the states, DC and the territories, which is what Address.state carries in US Core.
US_STATES = frozenset({
    "AL", "AK", "AZ", "AR", "CA", "CO", "CT", "DE", "DC", "FL", "GA", "HI", "ID", "IL", "IN", "IA", "KS",
    "KY", "LA", "ME", "MD", "MA", "MI", "MN", "MS", "MO", "MT", "NE", "NV", "NH", "NJ", "NM", "NY", "NC",
    "ND", "OH", "OK", "OR", "PA", "RI", "SC", "SD", "TN", "TX", "UT", "VT", "VA", "WA", "WV", "WI", "WY",
    "AS", "GU", "MP", "PR", "VI",
})


class ScopeStatus(StrEnum):
    """What state law says about dry needling by one kind of provider."""

    NOT_PERMITTED = "not-permitted"
    ENDORSEMENT_REQUIRED = "endorsement-required"
    PERMITTED = "permitted"
    SILENT = "silent"


@dataclass(frozen=True)
class ScopeRule:
    """One row of ``scope_of_practice.csv``."""

    state: str
    provider_type: str
    status: ScopeStatus
    period: EffectivePeriod
    statement: str
    source_ids: tuple[str, ...]
    confidence: str
    row_number: int


def _overlaps(first: EffectivePeriod, second: EffectivePeriod) -> bool:
    starts_before_second_ends = not (second.effective_to and first.effective_from
                                     and first.effective_from > second.effective_to)
    ends_after_second_starts = not (second.effective_from and first.effective_to
                                    and first.effective_to < second.effective_from)
    return starts_before_second_ends and ends_after_second_starts


def load_scope_of_practice(path: Path = SCOPE_FILE,
                           sources: dict[str, PolicySource] | None = None) -> tuple[ScopeRule, ...]:
    """Read and validate the scope table; two rows for one state and provider type may not overlap in time."""
    required = ("state", "provider_type", "status", "statement", "source_ids", "confidence")
    rules: list[ScopeRule] = []
    statuses = frozenset(status.value for status in ScopeStatus)
    for row_number, row in read_table(path, required):
        for column in ("effective_from", "effective_to"):
            if column not in row:
                raise MappingError(path.name, 1, column, "column is missing from the header")
        rule = ScopeRule(
            state=parse_choice(path, row_number, "state", row["state"].upper(), US_STATES),
            provider_type=parse_choice(path, row_number, "provider_type", row["provider_type"], PROVIDER_TYPES),
            status=ScopeStatus(parse_choice(path, row_number, "status", row["status"], statuses)),
            period=parse_period(path, row_number, row),
            statement=row["statement"],
            source_ids=parse_source_ids(path, row_number, "source_ids", row["source_ids"], sources),
            confidence=parse_confidence(path, row_number, row["confidence"]),
            row_number=row_number,
        )
        for earlier in rules:
            same_subject = (earlier.state, earlier.provider_type) == (rule.state, rule.provider_type)
            if same_subject and _overlaps(earlier.period, rule.period):
                raise MappingError(path.name, row_number, "effective_from",
                                   f"overlaps row {earlier.row_number} for {rule.state} {rule.provider_type}")
        rules.append(rule)
    return tuple(rules)


@cache
def scope_of_practice() -> tuple[ScopeRule, ...]:
    """The scope table shipped in ``mappings/``, loaded once per process."""
    return load_scope_of_practice()


def scope_on(state: str, provider_type: str, day: dt.date) -> ScopeRule | None:
    """The row in force on ``day`` for ``provider_type`` in ``state``, or None when the table does not say."""
    for rule in scope_of_practice():
        if rule.state == state and rule.provider_type == provider_type and rule.period.covers(day):
            return rule
    return None
