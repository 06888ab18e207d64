"""Codes that are wrong for dry needling once 20560/20561 exist, with the dates and sources that say so."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from needlecheck.mappings.code_pairs import CONFIDENCES, parse_codes, parse_source_id
from needlecheck.mappings.errors import MappingError
from needlecheck.mappings.tables import DATA_DIR, EffectivePeriod, parse_choice, parse_period, read_table

SUBSTITUTES_FILE = DATA_DIR / "dry_needling_substitutes.csv"


@dataclass(frozen=True)
class Substitute:
    """One row of ``dry_needling_substitutes.csv``: codes that must not carry dry needling in a period."""

    codes: frozenset[str]
    period: EffectivePeriod
    source_id: str
    confidence: str


def load_substitutes(path: Path = SUBSTITUTES_FILE) -> tuple[Substitute, ...]:
    """Read and validate the table."""
    rows: list[Substitute] = []
    seen: set[str] = set()
    for row_number, row in read_table(path, ("codes", "effective_from", "source_id", "confidence")):
        codes = parse_codes(path, row_number, "codes", row["codes"])
        if codes & seen:
            raise MappingError(path.name, row_number, "codes", f"{', '.join(sorted(codes & seen))} listed twice")
        seen |= codes
        rows.append(Substitute(
            codes=codes,
            period=parse_period(path, row_number, row),
            source_id=parse_source_id(path, row_number, "source_id", row["source_id"]),
            confidence=parse_choice(path, row_number, "confidence", row["confidence"], CONFIDENCES),
        ))
    return tuple(rows)


@cache
def substitutes() -> tuple[Substitute, ...]:
    """The table shipped in ``mappings/``, loaded once per process."""
    return load_substitutes()


def substitute_for(code: str, day: dt.date) -> Substitute | None:
    """The row saying ``code`` is a wrong code for dry needling on ``day``, if there is one."""
    return next((row for row in substitutes() if code in row.codes and row.period.covers(day)), None)
