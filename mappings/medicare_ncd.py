"""NCD 30.3.3 (acupuncture, dry needling included, for chronic low back pain) as dated, sourced data.

Three tables, all read by the Medicare rules on the date of service:

- ``ncd_30_3_3_criteria.csv``: when the NCD is in force and the duration it requires (MC-01, MC-02);
- ``ncd_30_3_3_scope.csv``: diagnoses the sources put outside the NCD (IC-05, NCD 30.3.1/30.3.2), used
  while the official covered-diagnosis list (``mappings.ncd_diagnoses``) is not installed;
- ``ncd_30_3_3_exclusions.csv``: diagnoses that may tie back pain to pregnancy, surgery or a systemic
  cause (IC-04; inference, low confidence: review flags, never denials).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from needlecheck.mappings.errors import MappingError
from needlecheck.mappings.icd10_ranges import Icd10Range, load_icd10_ranges
from needlecheck.mappings.provenance import parse_confidence
from needlecheck.mappings.tables import (
    DATA_DIR,
    EffectivePeriod,
    parse_choice,
    parse_https_url,
    parse_period,
    read_table,
)

CRITERIA_FILE = DATA_DIR / "ncd_30_3_3_criteria.csv"
SCOPE_FILE = DATA_DIR / "ncd_30_3_3_scope.csv"
EXCLUSIONS_FILE = DATA_DIR / "ncd_30_3_3_exclusions.csv"

COVERED_INDICATION = "covered-indication"
MINIMUM_DURATION_WEEKS = "minimum-duration-weeks"
_CRITERIA = frozenset({COVERED_INDICATION, MINIMUM_DURATION_WEEKS})
_NUMERIC_CRITERIA = frozenset({MINIMUM_DURATION_WEEKS})

SCOPE_CATEGORIES = frozenset({"non-low-back", "fibromyalgia", "osteoarthritis"})
EXCLUSION_CATEGORIES = frozenset({"pregnancy", "neoplasm", "infection", "inflammatory-spine", "post-surgical"})


@dataclass(frozen=True)
class NcdCriterion:
    """One row of ``ncd_30_3_3_criteria.csv``: a coverage criterion and the dates it is in force."""

    criterion: str
    value: str
    period: EffectivePeriod
    catalog_id: str
    source_title: str
    source_url: str
    confidence: str

    @property
    def number(self) -> int:
        """The value of a numeric criterion (validated when loaded)."""
        return int(self.value)


def load_ncd_criteria(path: Path = CRITERIA_FILE) -> tuple[NcdCriterion, ...]:
    """Read and validate the criteria table; two rows of one criterion may not be in force together."""
    rows: list[NcdCriterion] = []
    required = ("criterion", "value", "catalog_id", "source_title", "source_url", "confidence")
    for row_number, row in read_table(path, required):
        criterion = parse_choice(path, row_number, "criterion", row["criterion"], _CRITERIA)
        if criterion in _NUMERIC_CRITERIA and not row["value"].isdigit():
            raise MappingError(path.name, row_number, "value", f"'{row['value']}' is not a whole number")
        period = parse_period(path, row_number, row)
        for earlier in rows:
            if earlier.criterion == criterion and _overlap(earlier.period, period):
                raise MappingError(path.name, row_number, "effective_from", f"{criterion} overlaps an earlier row")
        rows.append(NcdCriterion(
            criterion=criterion,
            value=row["value"],
            period=period,
            catalog_id=row["catalog_id"],
            source_title=row["source_title"],
            source_url=parse_https_url(path, row_number, "source_url", row["source_url"]),
            confidence=parse_confidence(path, row_number, row["confidence"]),
        ))
    return tuple(rows)


def _overlap(one: EffectivePeriod, other: EffectivePeriod) -> bool:
    if one.effective_from and other.effective_to and one.effective_from > other.effective_to:
        return False
    return not (one.effective_to and other.effective_from and one.effective_to < other.effective_from)


@cache
def ncd_criteria() -> tuple[NcdCriterion, ...]:
    """The shipped criteria table, loaded once per process."""
    return load_ncd_criteria()


def criterion_on(criterion: str, day: dt.date) -> NcdCriterion | None:
    """The row of ``criterion`` in force on ``day``, or None (e.g. before NCD 30.3.3 took effect)."""
    for row in ncd_criteria():
        if row.criterion == criterion and row.period.covers(day):
            return row
    return None


def ncd_in_force(day: dt.date) -> bool:
    """Whether NCD 30.3.3 covers anything on ``day``; before it Medicare covered acupuncture for nothing."""
    return criterion_on(COVERED_INDICATION, day) is not None


def ncd_effective_from() -> dt.date | None:
    """The first day NCD 30.3.3 covered cLBP, for messages about earlier dates of service."""
    starts = [row.period.effective_from for row in ncd_criteria()
              if row.criterion == COVERED_INDICATION and row.period.effective_from]
    return min(starts) if starts else None


@cache
def ncd_scope() -> tuple[Icd10Range, ...]:
    """Diagnoses the sources put outside NCD 30.3.3."""
    return load_icd10_ranges(SCOPE_FILE, SCOPE_CATEGORIES)


@cache
def ncd_exclusions() -> tuple[Icd10Range, ...]:
    """Diagnoses that may tie back pain to pregnancy, surgery or a systemic cause (review flags)."""
    return load_icd10_ranges(EXCLUSIONS_FILE, EXCLUSION_CATEGORIES)
