"""ICD-10-CM: whether a diagnosis code exists, and can be billed, on a date of service.

The code set is the one ``simple-icd-10-cm`` ships: version 1.5.0 carries the CDC's **April 2026
release** (``ICD10CM_RELEASE``). One release says nothing about earlier years, so the changes that
matter for dry-needling claims (M54.5 split in FY2022, M79.1 subdivided in FY2023) are dated rows of
``icd10cm_changes.csv``; a code is judged as it stood on the date of service. Changes after the
library's release are unknown until the library (or the table) is updated.
"""

from __future__ import annotations

import datetime as dt
import importlib
import warnings
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from pathlib import Path
from types import ModuleType

from needlecheck.mappings.errors import MappingError
from needlecheck.mappings.sources import policy_sources
from needlecheck.mappings.tables import DATA_DIR, parse_choice, parse_date, read_table

CHANGES_FILE = DATA_DIR / "icd10cm_changes.csv"
ICD10CM_RELEASE = "April 2026 (simple-icd-10-cm 1.5.0)"
RELEASE_SOURCE_ID = "ICD10CM-RELEASE"

DELETED = "deleted"
ADDED = "added"
BECAME_HEADER = "became-header"
_CHANGES = frozenset({DELETED, ADDED, BECAME_HEADER})
_CONFIDENCES = frozenset({"high", "medium-high", "medium", "low-medium", "low"})
MAX_NAMED_CODES = 12


@dataclass(frozen=True)
class Icd10cmChange:
    """One dated change of one code (a row of ``icd10cm_changes.csv``)."""

    code: str
    change: str
    date: dt.date
    replaced_by: tuple[str, ...]
    source_id: str
    confidence: str


class CodeState(StrEnum):
    """What a code was on a date of service."""

    BILLABLE = "billable"
    HEADER = "header"
    DELETED = "deleted"
    NOT_YET = "not-yet"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class CodeStatus:
    """A code as it stood on one date: its state, the codes to use instead, and the dated row that decided."""

    code: str
    state: CodeState
    use_instead: tuple[str, ...] = ()
    change: Icd10cmChange | None = None

    @property
    def billable(self) -> bool:
        """Whether the code can go on a claim for that date."""
        return self.state is CodeState.BILLABLE


def normalize_code(code: str) -> str:
    """The dotted upper-case form: "m545", "M54.5" and " M54.5 " are all "M54.5"."""
    plain = code.strip().upper().replace(".", "").replace(" ", "")
    return plain if len(plain) <= 3 else f"{plain[:3]}.{plain[3:]}"


def load_icd10cm_changes(path: Path = CHANGES_FILE) -> dict[str, tuple[Icd10cmChange, ...]]:
    """Read and validate the changes table; rows by normalized code, oldest first."""
    known_sources = policy_sources()
    changes: dict[str, list[Icd10cmChange]] = {}
    for row_number, row in read_table(path, ("code", "change", "date", "source", "confidence")):
        if row["source"] not in known_sources:
            raise MappingError(path.name, row_number, "source", f"'{row['source']}' is not a known policy source id")
        day = parse_date(path, row_number, "date", row["date"])
        assert day is not None  # read_table rejects an empty date
        change = Icd10cmChange(
            code=normalize_code(row["code"]),
            change=parse_choice(path, row_number, "change", row["change"], _CHANGES),
            date=day,
            replaced_by=tuple(normalize_code(code) for code in row.get("replaced_by", "").split()),
            source_id=row["source"],
            confidence=parse_choice(path, row_number, "confidence", row["confidence"], _CONFIDENCES),
        )
        if change.change == DELETED and not change.replaced_by:
            raise MappingError(path.name, row_number, "replaced_by", "a deleted code must name its replacements")
        changes.setdefault(change.code, []).append(change)
    return {code: tuple(sorted(rows, key=lambda c: c.date)) for code, rows in changes.items()}


@cache
def icd10cm_changes() -> dict[str, tuple[Icd10cmChange, ...]]:
    """The changes table shipped in ``mappings/``, loaded once per process."""
    return load_icd10cm_changes()


@cache
def _release() -> ModuleType:
    # Importing parses the whole tabular XML (about 1.5 s), so only a check that needs it pays.
    with warnings.catch_warnings():
        # The library reads its data with importlib.resources' legacy API; nothing for us to act on.
        warnings.simplefilter("ignore", DeprecationWarning)
        return importlib.import_module("simple_icd_10_cm")


def preload_release() -> None:
    """Parse the ICD-10-CM release now (about 1.5 s), so the first hook call does not pay for it."""
    _release()


def _in_release(code: str) -> bool:
    release = _release()
    return release.is_valid_item(code) and not release.is_chapter_or_block(code)


def description(code: str) -> str | None:
    """The code's title in the release, or None for a code the release does not have."""
    code = normalize_code(code)
    return _release().get_description(code) if _in_release(code) else None


def billable_codes_under(code: str) -> tuple[str, ...]:
    """The billable codes below a header in the release, in release order."""
    release = _release()
    return tuple(child for child in release.get_descendants(code) if release.is_leaf(child))


def _nearest_header(code: str) -> str | None:
    # "M54.52" is no code, but "M54.5" is: its children are what the sender was probably after.
    for length in range(len(code) - 1, 2, -1):
        candidate = code[:length].rstrip(".")
        if _in_release(candidate):
            return candidate
    return None


def _status_in_release(code: str) -> CodeStatus:
    release = _release()
    if not _in_release(code):
        parent = _nearest_header(code)
        return CodeStatus(code, CodeState.UNKNOWN, billable_codes_under(parent) if parent else ())
    if release.is_leaf(code):
        return CodeStatus(code, CodeState.BILLABLE)
    return CodeStatus(code, CodeState.HEADER, billable_codes_under(code))


def status_on(code: str, day: dt.date) -> CodeStatus:
    """What ``code`` was on ``day``: the last dated change on or before it decides, else the release does."""
    code = normalize_code(code)
    changes = icd10cm_changes().get(code, ())
    applied = [change for change in changes if change.date <= day]
    pending = [change for change in changes if change.date > day]
    if applied and applied[-1].change == DELETED:
        return CodeStatus(code, CodeState.DELETED, applied[-1].replaced_by, applied[-1])
    if applied and applied[-1].change == BECAME_HEADER:
        children = applied[-1].replaced_by or billable_codes_under(code)
        return CodeStatus(code, CodeState.HEADER, children, applied[-1])
    if pending and pending[0].change == ADDED:
        parent = _release().get_parent(code) if _in_release(code) else None
        return CodeStatus(code, CodeState.NOT_YET, (parent,) if parent else (), pending[0])
    if pending:
        # Deleted or split later: on this day the code was still the billable one.
        return CodeStatus(code, CodeState.BILLABLE, change=pending[0])
    return _status_in_release(code)
