"""Reading a FHIR Bulk Data export into an on-disk index of resources by patient.

The export is streamed a line at a time (``.ndjson`` or ``.ndjson.gz``) into a temporary SQLite database, so
memory stays flat however large the export: a worker later reads one patient's resources at a time. A line
that is not JSON, a resource whose type does not match its file, or a file that cannot be read is recorded
as an input problem with its file and line, and reading goes on.

The database is a scratch file that is thrown away with the scan, so it is written without a journal or
syncs; each line is stored as the bytes it was read as (parsed once here, to find its type, id and patient,
and once more by the worker that checks its patient), and the indexes are built once everything is in.
"""

from __future__ import annotations

import gzip
import re
import sqlite3
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from needlecheck.scan.problems import InputProblem, ProblemLog
from needlecheck.scan.selection import DateRange

# The element that puts a resource in a patient's compartment, for the types the claim-create rules read.
PATIENT_ELEMENT = {
    "Claim": "patient",
    "Procedure": "subject",
    "Condition": "subject",
    "Encounter": "subject",
    "Coverage": "beneficiary",
    "BodyStructure": "patient",
    "ServiceRequest": "subject",
    "MedicationAdministration": "subject",
}
_FILE_TYPE = re.compile(r"^([A-Z][A-Za-z]+)(?:[._-]|$)")
_BATCH = 5000
_PAGE_SIZE = 16384  # a row (one resource, 1 to 3 kB) fits a page: fewer overflow pages and a shallower tree


def ndjson_files(folder: Path) -> list[Path]:
    """The export's data files, in name order (``Claim.ndjson``, ``Claim.2.ndjson.gz`` ...)."""
    return sorted(p for p in folder.iterdir() if p.name.endswith((".ndjson", ".ndjson.gz")) and not p.is_dir())


def expected_type(path: Path) -> str | None:
    """The resource type a file's name announces (``Claim.2.ndjson`` holds Claims), if it names one."""
    match = _FILE_TYPE.match(path.name)
    return match.group(1) if match else None


def reference_key(reference: Any) -> str | None:
    """``Type/id`` of a relative or absolute reference (``_history`` dropped); None for anything else."""
    target = reference.get("reference") if isinstance(reference, dict) else None
    if not isinstance(target, str) or target.startswith("#"):
        return None
    parts = target.rstrip("/").split("/")
    if "_history" in parts:
        parts = parts[: parts.index("_history")]
    return "/".join(parts[-2:]) if len(parts) >= 2 and parts[-2] and parts[-1] else None


def patient_of(resource: dict[str, Any]) -> str | None:
    """The id of the patient whose compartment holds ``resource`` (None for shared resources)."""
    kind = resource.get("resourceType")
    if kind == "Patient":
        return resource.get("id")
    element = PATIENT_ELEMENT.get(kind)  # type: ignore[arg-type]
    if element is None:
        return None
    key = reference_key(resource.get(element))
    return key.split("/", 1)[1] if key and key.startswith("Patient/") else None


@dataclass
class IndexStats:
    """What reading the export found: resources by type, Claims, lines that could not be used."""

    resources: int = 0
    claims: int = 0
    files: int = 0


def _lines(path: Path) -> Iterator[tuple[int, bytes]]:
    opener: Callable[[Path], Any] = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rb") as handle:  # type: ignore[operator]
        yield from enumerate(handle, start=1)


SCHEMA = """
CREATE TABLE resources (key TEXT NOT NULL, type TEXT NOT NULL, patient TEXT, owner TEXT, created TEXT,
                        json BLOB NOT NULL, file INTEGER NOT NULL, line INTEGER NOT NULL);
CREATE TABLE files (id INTEGER PRIMARY KEY, path TEXT NOT NULL);
"""
# A worker reads a patient's rows in export order (the index's implied rowid), a shared resource by its key
# (only resources outside any patient's compartment are looked up so), and a Practitioner's roles by owner.
INDEXES = """
CREATE INDEX resources_patient ON resources (patient) WHERE patient IS NOT NULL;
CREATE INDEX resources_claims ON resources (patient) WHERE type = 'Claim';
CREATE INDEX resources_shared ON resources (key) WHERE patient IS NULL;
CREATE INDEX resources_owner ON resources (owner) WHERE owner IS NOT NULL;
"""
_INSERT = "INSERT INTO resources VALUES (?, ?, ?, ?, ?, ?, ?, ?)"


def open_index(path: Path) -> sqlite3.Connection:
    """A new index database for bulk loading (no journal: it is thrown away if the scan fails).

    SQLite's cache stays at its default: a larger one indexes about 20 % faster, but the memory stays with
    this process, and every forked worker's RSS would count it again."""
    connection = sqlite3.connect(path)
    connection.executescript(f"PRAGMA page_size={_PAGE_SIZE}; PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF; "
                             "PRAGMA temp_store=FILE;" + SCHEMA)
    return connection


def _in_range(dates: DateRange) -> tuple[str, tuple[str, ...]]:
    """The condition on a Claim row of ``DateRange.contains`` (``created`` holds the first 10 characters)."""
    if dates.since is None and dates.until is None:
        return "", ()
    clause, parameters = " AND length(created) = 10", []
    if dates.since is not None:
        clause += " AND created >= ?"
        parameters.append(dates.since.isoformat())
    if dates.until is not None:
        clause += " AND created <= ?"
        parameters.append(dates.until.isoformat())
    return clause, tuple(parameters)


def claims_in_range(connection: sqlite3.Connection, dates: DateRange) -> int:
    """How many indexed Claims were created in the date range."""
    clause, parameters = _in_range(dates)
    return connection.execute(f"SELECT COUNT(*) FROM resources WHERE type = 'Claim'{clause}", parameters).fetchone()[0]


@contextmanager
def claim_patients(path: Path, size: int, dates: DateRange | None = None) -> Iterator[Iterator[list[str]]]:
    """The patients with a Claim in the date range, ``size`` at a time, in the order of their first Claim.

    Read lazily from the finished index (the pool's feeder thread pulls them as workers take work), so the
    list of a million claims' patients is never held; export order keeps a batch's rows close together on disk.
    A patient with no Claim in the range is not read at all: a year's scan of a five-year export reads a year.
    """
    clause, parameters = _in_range(dates or DateRange())
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
    cursor = connection.execute(f"SELECT patient FROM resources WHERE type = 'Claim'{clause} GROUP BY patient "
                                "ORDER BY MIN(rowid)", parameters)

    def batches() -> Iterator[list[str]]:
        while rows := cursor.fetchmany(size):
            yield [row[0] for row in rows]

    try:
        yield batches()
    finally:
        connection.close()


def build_index(connection: sqlite3.Connection, folder: Path, problems: ProblemLog,
                on_file: Callable[[Path], None] | None = None) -> IndexStats:
    """Stream every NDJSON file of ``folder`` into the index; problems are appended, not raised."""
    stats = IndexStats()
    for file_id, path in enumerate(ndjson_files(folder), start=1):
        connection.execute("INSERT INTO files VALUES (?, ?)", (file_id, path.name))
        wanted = expected_type(path)
        batch: list[tuple[Any, ...]] = []
        line = 0
        try:
            for line, raw in _lines(path):
                row = _row(raw, path, line, wanted, file_id, problems)
                if row is None:
                    continue
                batch.append(row)
                stats.resources += 1
                stats.claims += row[1] == "Claim"
                if len(batch) >= _BATCH:
                    connection.executemany(_INSERT, batch)
                    batch.clear()
            stats.files += 1
        except (OSError, EOFError, zlib.error, UnicodeDecodeError) as error:
            where = line + 1 if line else None
            problems.append(InputProblem("unreadable-file", path.name, where, f"cannot read the file: {error}"))
        connection.executemany(_INSERT, batch)
        if on_file is not None:
            on_file(path)
    connection.executescript(INDEXES)
    connection.commit()
    return stats


def _row(raw: bytes, path: Path, line: int, wanted: str | None, file_id: int,
         problems: ProblemLog) -> tuple[Any, ...] | None:
    text = raw.strip()
    if not text:
        return None
    try:
        resource = orjson.loads(text)
    except orjson.JSONDecodeError as error:
        problems.append(InputProblem("malformed-line", path.name, line, f"not JSON: {error}"))
        return None
    kind = resource.get("resourceType") if isinstance(resource, dict) else None
    resource_id = resource.get("id") if isinstance(resource, dict) else None
    if not isinstance(kind, str) or not isinstance(resource_id, str) or not resource_id:
        problems.append(InputProblem("malformed-line", path.name, line, "not a FHIR resource with a resourceType "
                                                                         "and an id"))
        return None
    if wanted is not None and kind != wanted:
        problems.append(InputProblem("wrong-resource-type", path.name, line,
                                     f"a {kind} in a file of {wanted} resources; skipped"))
        return None
    patient = patient_of(resource)
    if kind == "Claim" and patient is None:
        problems.append(InputProblem("claim-without-patient", path.name, line,
                                     f"Claim/{resource_id} names no Patient in Claim.patient; skipped"))
        return None
    owner = reference_key(resource.get("practitioner")) if kind == "PractitionerRole" else None
    created = resource.get("created") if kind == "Claim" else None
    created = created[:10] if isinstance(created, str) else None
    return (f"{kind}/{resource_id}", kind, patient, owner, created, text, file_id, line)
