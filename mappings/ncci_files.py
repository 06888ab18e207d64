"""Reading CMS's NCCI edit files as CMS publishes them: a preamble, a header row, then one row per edit.

CMS ships each table as a zip holding an xlsx and a text form (tab-separated ``.txt`` for PTP edits,
``.csv`` for MUE tables), with an AMA copyright notice above the header (for MUEs often one quoted,
multi-line cell) and, in the PTP files, header text that wraps onto continuation rows. Only the
text forms are read: an xlsx can be saved as CSV with the same columns.
"""

from __future__ import annotations

import csv
import datetime as dt
import re
from collections.abc import Callable, Iterator
from pathlib import Path

from needlecheck.mappings.errors import MappingError

TEXT_SUFFIXES = frozenset({".txt", ".csv"})
_SPACES = re.compile(r"\s+")


def normalized_cell(value: str) -> str:
    """A header cell without case, surrounding quotes or line breaks: "HCPCS/\\nCPT Code" is "hcpcs/cpt code"."""
    return _SPACES.sub(" ", value.strip().strip('"')).replace("/ ", "/").lower()


def rows_after_header(path: Path, is_header: Callable[[list[str]], bool]) -> Iterator[tuple[int, list[str], list[str]]]:
    """Yield ``(line_number, header, cells)`` for each non-blank row below the first row ``is_header`` accepts.

    Tab-separated when the file has tabs, comma-separated otherwise. Raises MappingError when the
    file is not a text form or has no header row.
    """
    if path.suffix.lower() not in TEXT_SUFFIXES:
        raise MappingError(path.name, None, None, "only the .txt or .csv form of a CMS file can be read; "
                                                  "save an .xlsx as CSV")
    # CMS writes these files in Windows-1252; latin-1 reads every byte of it without failing.
    text = path.read_text(encoding="latin-1")
    delimiter = "\t" if "\t" in text else ","
    reader = csv.reader(text.splitlines(keepends=True), delimiter=delimiter)
    header: list[str] | None = None
    for cells in reader:
        stripped = [cell.strip() for cell in cells]
        if header is None:
            if is_header(stripped):
                header = [normalized_cell(cell) for cell in stripped]
            continue
        if any(stripped):
            yield reader.line_num, header, stripped
    if header is None:
        raise MappingError(path.name, None, "header", "no header row found (is this the right CMS file?)")


def parse_cms_date(path: Path, line_number: int, field: str, value: str) -> dt.date:
    """A CMS date cell, ``YYYYMMDD`` (also accepted: ISO and US ``MM/DD/YYYY`` as a spreadsheet saves it)."""
    for pattern in ("%Y%m%d", "%Y-%m-%d", "%m/%d/%Y"):
        try:
            return dt.datetime.strptime(value, pattern).date()
        except ValueError:
            continue
    raise MappingError(path.name, line_number, field, f"'{value}' is not a date (YYYYMMDD)")


HCPCS_CODE = re.compile(r"^[0-9A-Z]{5}$")


def parse_hcpcs(path: Path, line_number: int, field: str, value: str) -> str:
    """A five-character CPT/HCPCS code."""
    code = value.strip().upper()
    if not HCPCS_CODE.match(code):
        raise MappingError(path.name, line_number, field, f"'{value}' is not a CPT/HCPCS code")
    return code
