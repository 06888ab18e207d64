"""ICD-10-CM: whether a diagnosis code exists, and can be billed, on a date of service.

The code set is the one ``simple-icd-10-cm`` ships: version 1.5.0 carries the CDC's **April 2026
release** (``ICD10CM_RELEASE``). One release says nothing about earlier years, so the changes that
matter for dry-needling claims (M54.5 split in FY2022, M79.1 subdivided in FY2023) are dated rows of
``icd10cm_changes.csv``; a code is judged as it stood on the date of service. Changes after the
library's release are unknown until the library (or the table) is updated.

The rules never load the library itself: its release is derived once into a small read-only SQLite table
(``release_table()``, under ``cache_dir()``) that every process opens in milliseconds.
"""

from __future__ import annotations

import datetime as dt
import importlib
import importlib.util
import os
import sqlite3
import tempfile
import warnings
from contextlib import closing
from dataclasses import dataclass
from enum import StrEnum
from functools import cache, lru_cache
from pathlib import Path

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


class ReleaseTable:
    """The ICD-10-CM release as a read-only SQLite table: one row per code, its parent, leaf flag and title.

    ``simple-icd-10-cm`` parses its whole XML on import (seconds, and ~170 MB held per process); the few
    lookups the rules make need none of that. The table is derived once from the pinned library into
    ``cache_dir()`` and shared by every process through the page cache: opening it costs milliseconds.
    """

    def __init__(self, path: Path) -> None:
        self.path = path.absolute()
        self._connection: sqlite3.Connection | None = None
        self._pid = 0

    def _db(self) -> sqlite3.Connection:
        # A connection never crosses a fork: gunicorn workers each open their own.
        if self._connection is None or self._pid != os.getpid():
            self._connection = sqlite3.connect(f"{self.path.as_uri()}?mode=ro&immutable=1", uri=True,
                                               check_same_thread=False)
            self._pid = os.getpid()
        return self._connection

    def entry(self, code: str) -> tuple[str | None, bool, str] | None:
        """``(parent, is_leaf, title)`` of a code of the release, None for anything else."""
        row = self._db().execute("SELECT parent, leaf, title FROM code WHERE code = ?", (code,)).fetchone()
        return None if row is None else (row[0], bool(row[1]), row[2])

    def leaves_under(self, code: str) -> tuple[str, ...]:
        """The billable codes below ``code``, in release order."""
        rows = self._db().execute(
            "WITH RECURSIVE below(code) AS (SELECT code FROM code WHERE parent = ? "
            "UNION ALL SELECT code.code FROM code JOIN below ON code.parent = below.code) "
            "SELECT code.code FROM code JOIN below USING (code) WHERE leaf ORDER BY ordinal", (code,))
        return tuple(row[0] for row in rows)


def cache_dir() -> Path:
    """Where derived tables live: ``$NEEDLECHECK_CACHE_DIR``, else ``$XDG_CACHE_HOME/needlecheck``."""
    configured = os.environ.get("NEEDLECHECK_CACHE_DIR")
    if configured:
        return Path(configured)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "needlecheck"


def _write_release_table(path: Path) -> None:
    with warnings.catch_warnings():
        # The library reads its data with importlib.resources' legacy API; nothing for us to act on.
        warnings.simplefilter("ignore", DeprecationWarning)
        release = importlib.import_module("simple_icd_10_cm")
    path.parent.mkdir(parents=True, exist_ok=True)
    # Written beside its final name and renamed: processes starting together never read half a table.
    handle, partial = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".partial")
    os.close(handle)
    try:
        with closing(sqlite3.connect(partial)) as db:
            db.execute("CREATE TABLE code (code TEXT PRIMARY KEY, parent TEXT, leaf INTEGER NOT NULL, "
                       "ordinal INTEGER NOT NULL, title TEXT NOT NULL)")
            db.execute("CREATE INDEX code_parent ON code (parent)")
            db.executemany("INSERT INTO code VALUES (?, ?, ?, ?, ?)", (
                (code, release.get_parent(code) or None, int(release.is_leaf(code)), ordinal,
                 release.get_description(code))
                for ordinal, code in enumerate(release.get_all_codes(True))
                if not release.is_chapter_or_block(code)))
            db.commit()
        os.replace(partial, path)
    except BaseException:
        Path(partial).unlink(missing_ok=True)
        raise


def library_version() -> str:
    """The installed simple-icd-10-cm version: the name of its ``.dist-info`` folder beside the package (one
    directory listing), else importlib.metadata, whose import (with the email package it parses metadata with)
    would cost every ``needlecheck check`` ~30 ms."""
    spec = importlib.util.find_spec("simple_icd_10_cm")  # finds the package without running it
    if spec is not None and spec.origin:
        found = list(Path(spec.origin).parent.parent.glob("simple_icd_10_cm-*.dist-info"))
        if len(found) == 1:
            return found[0].name.removeprefix("simple_icd_10_cm-").removesuffix(".dist-info")
    from importlib.metadata import version

    return version("simple-icd-10-cm")


@cache
def release_table() -> ReleaseTable:
    """The release table of the pinned library version, derived into ``cache_dir()`` on first use."""
    path = cache_dir() / f"icd10cm-simple-icd-10-cm-{library_version()}.sqlite"
    if not path.exists():
        try:
            _write_release_table(path)
        except OSError as error:
            raise MappingError(path.name, None, None,
                               f"cannot write the ICD-10-CM table in {path.parent}: {error.strerror}") from error
    return ReleaseTable(path)


def preload_release() -> None:
    """Derive the ICD-10-CM table now if it is missing (seconds, once per library version), not in a hook call."""
    release_table().entry("M54.50")


@lru_cache(maxsize=4096)
def _entry(code: str) -> tuple[str | None, bool, str] | None:
    return release_table().entry(code)


def _in_release(code: str) -> bool:
    return _entry(code) is not None


def description(code: str) -> str | None:
    """The code's title in the release, or None for a code the release does not have."""
    entry = _entry(normalize_code(code))
    return entry[2] if entry else None


def billable_codes_under(code: str) -> tuple[str, ...]:
    """The billable codes below a header in the release, in release order."""
    return release_table().leaves_under(code)


def _nearest_header(code: str) -> str | None:
    # "M54.52" is no code, but "M54.5" is: its children are what the sender was probably after.
    for length in range(len(code) - 1, 2, -1):
        candidate = code[:length].rstrip(".")
        if _in_release(candidate):
            return candidate
    return None


def _status_in_release(code: str) -> CodeStatus:
    entry = _entry(code)
    if entry is None:
        parent = _nearest_header(code)
        return CodeStatus(code, CodeState.UNKNOWN, billable_codes_under(parent) if parent else ())
    if entry[1]:
        return CodeStatus(code, CodeState.BILLABLE)
    return CodeStatus(code, CodeState.HEADER, billable_codes_under(code))


# The release and its dated changes are fixed for a process, and calls ask about the same few codes and days.
@lru_cache(maxsize=4096)
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
        entry = _entry(code)
        parent = entry[0] if entry else None
        return CodeStatus(code, CodeState.NOT_YET, (parent,) if parent else (), pending[0])
    if pending:
        # Deleted or split later: on this day the code was still the billable one.
        return CodeStatus(code, CodeState.BILLABLE, change=pending[0])
    return _status_in_release(code)
