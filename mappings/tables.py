"""Reading the CSV tables of ``mappings/`` with the checks every table needs."""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from needlecheck.mappings.errors import MappingError

DATA_DIR = Path(__file__).resolve().parent


def read_table(path: Path, required: tuple[str, ...]) -> Iterator[tuple[int, dict[str, str]]]:
    """Yield ``(row_number, row)`` for each data row; the header is row 1, as a spreadsheet shows it.

    Raises MappingError when a required column is missing from the header or empty in a row.
    """
    try:
        data = path.read_bytes()
    except OSError as error:
        # The full path: a file missing from an installation is found where the service looked for it.
        raise MappingError(str(path), None, None, f"cannot be read: {error.strerror or error}") from error
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        row = data[:error.start].count(b"\n") + 1
        raise MappingError(path.name, row, None, f"is not UTF-8 text (byte {data[error.start]:#04x})") from error
    reader = csv.DictReader(io.StringIO(text, newline=""))
    try:
        header = reader.fieldnames or []
        for column in required:
            if column not in header:
                raise MappingError(path.name, 1, column, "column is missing from the header")
        for row_number, row in enumerate(reader, start=2):
            for column in required:
                if not (row.get(column) or "").strip():
                    raise MappingError(path.name, row_number, column, "must not be empty")
            yield row_number, {key: (value or "").strip() for key, value in row.items() if key}
    except csv.Error as error:
        raise MappingError(path.name, max(reader.line_num, 1), None, f"is not valid CSV: {error}") from error


def parse_date(path: Path, row_number: int, field: str, value: str) -> dt.date | None:
    """An ISO date, or None for an empty cell (an open-ended effective period)."""
    if not value:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError as error:
        raise MappingError(path.name, row_number, field, f"'{value}' is not an ISO date") from error


def parse_choice(path: Path, row_number: int, field: str, value: str, choices: frozenset[str]) -> str:
    """The cell's value if it is one of ``choices``."""
    if value not in choices:
        allowed = ", ".join(sorted(choices))
        raise MappingError(path.name, row_number, field, f"'{value}' is not one of: {allowed}")
    return value


@dataclass(frozen=True)
class EffectivePeriod:
    """The dates a row of a data table is in force: both ends inclusive, either end open."""

    effective_from: dt.date | None = None
    effective_to: dt.date | None = None

    def covers(self, day: dt.date) -> bool:
        """Whether the row applies to a service on ``day``."""
        if self.effective_from and day < self.effective_from:
            return False
        return not (self.effective_to and day > self.effective_to)


def parse_period(path: Path, row_number: int, row: dict[str, str]) -> EffectivePeriod:
    """The ``effective_from``/``effective_to`` columns of a row, checked to be in order."""
    start = parse_date(path, row_number, "effective_from", row.get("effective_from", ""))
    end = parse_date(path, row_number, "effective_to", row.get("effective_to", ""))
    if start and end and end < start:
        raise MappingError(path.name, row_number, "effective_to", "ends before effective_from")
    return EffectivePeriod(start, end)


def parse_https_url(path: Path, row_number: int, field: str, value: str) -> str:
    """The cell's value if it is an https URL (every source must be one a reader can open)."""
    if not value.startswith("https://"):
        raise MappingError(path.name, row_number, field, "must be an https URL")
    return value
