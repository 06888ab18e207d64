"""Pairs of services that should not be reported together with dry needling on one date, as data.

Each row of ``code_pairs.csv`` names a first and a second set of codes (CPT codes, or
``family:<name>`` for a family of ``cpt_codes.csv``), whether the pair matters on the same date or
only for the same muscles, the modifier that makes the pair acceptable and on which code it goes,
the severity, the source id (``policy_sources/``) and the dates the row is in force. Every code
must be in ``cpt_codes.csv``, so each one has a source for what it means.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from needlecheck.mappings.cpt import cpt_codes
from needlecheck.mappings.errors import MappingError
from needlecheck.mappings.sources import policy_sources
from needlecheck.mappings.tables import DATA_DIR, EffectivePeriod, parse_choice, parse_period, read_table

PAIRS_FILE = DATA_DIR / "code_pairs.csv"
SAME_DATE = "same-date"
SAME_MUSCLE = "same-muscle"
CONFIDENCES = frozenset({"high", "medium-high", "medium", "low-medium", "low"})
_FAMILY_PREFIX = "family:"


@dataclass(frozen=True)
class CodePair:
    """One row of ``code_pairs.csv``."""

    pair_id: str
    first: frozenset[str]
    second: frozenset[str]
    scope: str
    required_modifier: str | None
    modifier_on: str | None
    severity: str
    source_id: str
    period: EffectivePeriod
    confidence: str


def parse_codes(path: Path, row_number: int, field: str, value: str) -> frozenset[str]:
    """The codes a cell names: CPT codes and ``family:<name>`` tokens, all of them in ``cpt_codes.csv``."""
    table = cpt_codes()
    codes: set[str] = set()
    for token in value.split():
        if token.startswith(_FAMILY_PREFIX):
            family = token.removeprefix(_FAMILY_PREFIX)
            members = {code for code, row in table.items() if row.family == family}
            if not members:
                raise MappingError(path.name, row_number, field, f"'{family}' is no family of cpt_codes.csv")
            codes |= members
        elif token in table:
            codes.add(token)
        else:
            raise MappingError(path.name, row_number, field, f"'{token}' is not in cpt_codes.csv")
    return frozenset(codes)


def parse_source_id(path: Path, row_number: int, field: str, value: str) -> str:
    """The cell's value if it is the id of a policy source."""
    if value not in policy_sources():
        raise MappingError(path.name, row_number, field, f"'{value}' is not a known policy source id")
    return value


def load_code_pairs(path: Path = PAIRS_FILE) -> dict[str, CodePair]:
    """Read and validate the pair table, by pair id."""
    pairs: dict[str, CodePair] = {}
    required = ("pair_id", "first", "second", "scope", "severity", "source_id", "confidence")
    for row_number, row in read_table(path, required):
        if row["pair_id"] in pairs:
            raise MappingError(path.name, row_number, "pair_id", f"{row['pair_id']} appears twice")
        modifier = row.get("required_modifier") or None
        modifier_on = row.get("modifier_on") or None
        if modifier and modifier_on not in ("first", "second"):
            raise MappingError(path.name, row_number, "modifier_on", "must be 'first' or 'second' with a modifier")
        pairs[row["pair_id"]] = CodePair(
            pair_id=row["pair_id"],
            first=parse_codes(path, row_number, "first", row["first"]),
            second=parse_codes(path, row_number, "second", row["second"]),
            scope=parse_choice(path, row_number, "scope", row["scope"], frozenset({SAME_DATE, SAME_MUSCLE})),
            required_modifier=modifier,
            modifier_on=modifier_on,
            severity=parse_choice(path, row_number, "severity", row["severity"], frozenset({"warning", "info"})),
            source_id=parse_source_id(path, row_number, "source_id", row["source_id"]),
            period=parse_period(path, row_number, row),
            confidence=parse_choice(path, row_number, "confidence", row["confidence"], CONFIDENCES),
        )
    return pairs


@cache
def code_pairs() -> dict[str, CodePair]:
    """The pair table shipped in ``mappings/``, loaded once per process."""
    return load_code_pairs()


def code_pair_on(pair_id: str, day: dt.date) -> CodePair | None:
    """The pair row ``pair_id`` if it is in force on ``day``."""
    pair = code_pairs()[pair_id]
    return pair if pair.period.covers(day) else None
