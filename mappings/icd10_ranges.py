"""Sourced tables of ICD-10-CM code ranges (a code, a category, a block or a chapter per row).

Several Medicare rules ask "is this diagnosis one of these?" about groups of codes that no official file
lists: diagnoses outside NCD 30.3.3, diagnoses that may tie low back pain to a systemic cause. Each such
group is a CSV with one range per row, its source and its confidence, read by ``load_icd10_ranges``.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from needlecheck.mappings.errors import MappingError
from needlecheck.mappings.provenance import parse_confidence
from needlecheck.mappings.tables import EffectivePeriod, parse_choice, parse_https_url, parse_period, read_table

# A code as claims carry it: a letter, a digit, then up to five letters or digits; the dot is optional.
_ICD10CM_CODE = re.compile(r"^[A-Z][0-9][0-9A-Z]([0-9A-Z]{0,4})$")


def icd10_key(code: str) -> str:
    """The code as a comparable key: upper case, without the dot or spaces ("m54.50" -> "M5450")."""
    return code.strip().upper().replace(".", "").replace(" ", "")


def is_icd10cm_shaped(code: str) -> bool:
    """Whether ``code`` looks like an ICD-10-CM code (category, subcategory or full code)."""
    return bool(_ICD10CM_CODE.match(icd10_key(code)))


@dataclass(frozen=True)
class Icd10Range:
    """Codes from ``first`` to ``last`` inclusive, compared at the bounds' own length.

    ``M54.2`` to ``M54.2`` holds M54.2 and any longer code under it; ``O00`` to ``O9A`` holds every code whose
    category sorts between the two (ICD-10-CM categories sort as text: O99 < O9A < P00).
    """

    first: str
    last: str
    label: str
    category: str
    period: EffectivePeriod
    catalog_id: str
    source_title: str
    source_url: str
    confidence: str
    note: str = ""

    def holds(self, code: str) -> bool:
        """Whether the (normalized) ``code`` falls in this range."""
        prefix = icd10_key(code)[: len(self.first)]
        return len(prefix) == len(self.first) and self.first <= prefix <= self.last

    @property
    def shown(self) -> str:
        """The range as a person writes it: "M54.2" or "O00-O9A"."""
        first, last = _dotted(self.first), _dotted(self.last)
        return first if first == last else f"{first}-{last}"


def _dotted(key: str) -> str:
    return key if len(key) <= 3 else f"{key[:3]}.{key[3:]}"


RANGE_COLUMNS = ("first", "last", "label", "category", "catalog_id", "source_title", "source_url", "confidence")


def load_icd10_ranges(path: Path, categories: frozenset[str]) -> tuple[Icd10Range, ...]:
    """Read and validate a range table whose ``category`` column takes one of ``categories``.

    Both bounds must look like ICD-10-CM codes of the same length, in order; every row needs an https
    source and a confidence from the catalog's scale.
    """
    ranges: list[Icd10Range] = []
    for row_number, row in read_table(path, RANGE_COLUMNS):
        first, last = icd10_key(row["first"]), icd10_key(row["last"])
        for field, key in (("first", first), ("last", last)):
            if not is_icd10cm_shaped(key):
                raise MappingError(path.name, row_number, field, f"'{row[field]}' is not an ICD-10-CM code")
        if len(first) != len(last):
            raise MappingError(path.name, row_number, "last", "must have as many characters as first")
        if last < first:
            raise MappingError(path.name, row_number, "last", "sorts before first")
        ranges.append(Icd10Range(
            first=first,
            last=last,
            label=row["label"],
            category=parse_choice(path, row_number, "category", row["category"], categories),
            period=parse_period(path, row_number, row),
            catalog_id=row["catalog_id"],
            source_title=row["source_title"],
            source_url=parse_https_url(path, row_number, "source_url", row["source_url"]),
            confidence=parse_confidence(path, row_number, row["confidence"]),
            note=row.get("note", ""),
        ))
    return tuple(ranges)


def ranges_holding(ranges: Iterable[Icd10Range], code: str, day: dt.date) -> tuple[Icd10Range, ...]:
    """The ranges in force on ``day`` that hold ``code``."""
    return tuple(item for item in ranges if item.period.covers(day) and item.holds(code))
