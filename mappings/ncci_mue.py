"""The Medicare NCCI Practitioner Services MUE table, read from CMS's quarterly files.

Layout (per CMS's practitioner MUE table, CSV): a copyright preamble (often one quoted multi-line
cell), a header row ``HCPCS/CPT Code | Practitioner Services MUE Values | MUE Adjudication Indicator
| MUE Rationale``, then one row per code. The adjudication indicator cell holds the MAI digit and its
text ("1 Line Edit", "2 Date of Service Edit: Policy", "3 Date of Service Edit: Clinical").

The rows carry no dates: a table is in force from the date in its file name (CMS names them
``..._Eff_MM-DD-YYYY.csv``) until the next installed table starts. A file without a date in its name
applies to every date of service.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from pathlib import Path

from needlecheck.mappings.datasets import DataSetSpec
from needlecheck.mappings.errors import MappingError
from needlecheck.mappings.ncci_files import normalized_cell, parse_hcpcs, rows_after_header

DATASET_NAME = "ncci-mue-practitioner"
LINE_EDIT, POLICY_DATE_EDIT, CLINICAL_DATE_EDIT = "1", "2", "3"
_EFFECTIVE_IN_NAME = re.compile(r"Eff_(\d{2})-(\d{2})-(\d{4})", re.IGNORECASE)
_COLUMNS = {
    "code": "hcpcs/cpt code",
    "value": "practitioner services mue values",
    "mai": "mue adjudication indicator",
    "rationale": "mue rationale",
}


@dataclass(frozen=True)
class MueValue:
    """The most units of one code a practitioner reports for one patient on one date, and how it is applied."""

    code: str
    max_units: int
    adjudication_indicator: str
    rationale: str

    @property
    def per_date(self) -> bool:
        """MAI 2 and 3 add up every line (and earlier claim) of the date; MAI 1 looks at each line alone."""
        return self.adjudication_indicator in (POLICY_DATE_EDIT, CLINICAL_DATE_EDIT)


@dataclass(frozen=True)
class MueTable:
    """One installed quarterly table."""

    effective: dt.date | None
    values: dict[str, MueValue]


@dataclass(frozen=True)
class MueTables:
    """Every installed table, oldest first."""

    tables: tuple[MueTable, ...]

    def value_on(self, code: str, day: dt.date) -> MueValue | None:
        """The MUE of ``code`` in the latest table in force on ``day``."""
        in_force = [table for table in self.tables if table.effective is None or table.effective <= day]
        return in_force[-1].values.get(code) if in_force else None


def _is_header(cells: list[str]) -> bool:
    return bool(cells) and normalized_cell(cells[0]) == _COLUMNS["code"]


def _effective_from_name(path: Path) -> dt.date | None:
    found = _EFFECTIVE_IN_NAME.search(path.name)
    if not found:
        return None
    month, day, year = (int(part) for part in found.groups())
    try:
        return dt.date(year, month, day)
    except ValueError as error:
        raise MappingError(path.name, None, "file name", f"'{found.group(0)}' is not a date") from error


def load_mue_table(path: Path) -> MueTable:
    """Read one MUE file."""
    values: dict[str, MueValue] = {}
    for line_number, header, cells in rows_after_header(path, _is_header):
        positions = {}
        for key, title in _COLUMNS.items():
            if title not in header:
                raise MappingError(path.name, None, title, "column is missing from the header")
            positions[key] = header.index(title)
        cells = cells + [""] * (len(header) - len(cells))
        code = parse_hcpcs(path, line_number, "HCPCS/CPT Code", cells[positions["code"]])
        raw_value = cells[positions["value"]]
        if not raw_value.isdigit():
            raise MappingError(path.name, line_number, "Practitioner Services MUE Values",
                               f"'{raw_value}' is not a whole number")
        indicator = cells[positions["mai"]][:1]
        if indicator not in (LINE_EDIT, POLICY_DATE_EDIT, CLINICAL_DATE_EDIT):
            raise MappingError(path.name, line_number, "MUE Adjudication Indicator",
                               f"'{cells[positions['mai']]}' does not start with 1, 2 or 3")
        if code in values:
            raise MappingError(path.name, line_number, "HCPCS/CPT Code", f"{code} appears twice")
        values[code] = MueValue(code, int(raw_value), indicator, cells[positions["rationale"]])
    return MueTable(_effective_from_name(path), values)


def load_mue_tables(files: list[Path]) -> MueTables:
    """Read every installed quarterly table; two tables for one start date are an error."""
    tables = [load_mue_table(path) for path in files]
    starts = [table.effective for table in tables]
    if len(set(starts)) != len(starts):
        raise MappingError(files[0].name, None, "file name", "two MUE tables start on the same date")
    return MueTables(tuple(sorted(tables, key=lambda table: table.effective or dt.date.min)))


DATASET = DataSetSpec(
    name=DATASET_NAME,
    title="the Medicare NCCI Practitioner Services MUE table",
    publisher_url="https://www.cms.gov/medicare/coding-billing/national-correct-coding-initiative-ncci-edits/"
                  "medicare-ncci-medically-unlikely-edits",
    file_format="CMS practitioner services MUE table, .csv (named ..._Eff_MM-DD-YYYY.csv)",
    load=load_mue_tables,
)
