"""The Medicare NCCI Practitioner Services MUE table, read from CMS's quarterly files.

Layout (per CMS's practitioner MUE table, CSV): a copyright preamble (often one quoted multi-line
cell), a header row ``HCPCS/CPT Code | Practitioner Services MUE Values | MUE Adjudication Indicator
| MUE Rationale``, then one row per code. The adjudication indicator cell holds the MAI digit and its
text ("1 Line Edit", "2 Date of Service Edit: Policy", "3 Date of Service Edit: Clinical").

The rows carry no dates: a table is in force from the date in its file name (CMS names them
``..._Eff_MM-DD-YYYY.csv``) until the next installed table starts. A file without a date in its name
applies to every date of service.

Until such a table is installed (or for a date no installed table is in force on), ``mue_on`` falls back to
the few values shipped in ``ncci_mue_defaults.csv``, each with its source: 20560's MUE of 1 as a 2025 code
page reproduces CMS's table (FE-07, medium confidence; its adjudication indicator is not given, left empty).
An installed table always supersedes them, including where it has no row for the code. 20561 has no row:
the source says only "expect 1, unverified".
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from needlecheck.mappings.cpt import cpt_codes
from needlecheck.mappings.datasets import DataSetSpec
from needlecheck.mappings.errors import MappingError
from needlecheck.mappings.ncci_files import normalized_cell, parse_hcpcs, rows_after_header
from needlecheck.mappings.provenance import parse_confidence, parse_source_ids
from needlecheck.mappings.tables import DATA_DIR, EffectivePeriod, parse_choice, parse_period, read_table

DATASET_NAME = "ncci-mue-practitioner"
MUE_DEFAULTS_FILE = DATA_DIR / "ncci_mue_defaults.csv"
LINE_EDIT, POLICY_DATE_EDIT, CLINICAL_DATE_EDIT = "1", "2", "3"
NOT_GIVEN = ""  # an adjudication indicator the source does not give
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
    source_ids: tuple[str, ...] = ()  # a shipped default's sources; empty for a value of an installed CMS table

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

    def in_force_on(self, day: dt.date) -> bool:
        """Whether an installed table applies to ``day``."""
        return any(table.effective is None or table.effective <= day for table in self.tables)

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


@dataclass(frozen=True)
class MueDefault:
    """One row of ``ncci_mue_defaults.csv``: a sourced MUE used while no installed CMS table applies."""

    value: MueValue
    period: EffectivePeriod
    confidence: str


def load_mue_defaults(path: Path = MUE_DEFAULTS_FILE) -> tuple[MueDefault, ...]:
    """Read and validate the shipped defaults: known codes, whole units, an MAI of 1-3 or none, one source."""
    required = ("code", "max_units", "effective_from", "source_id", "confidence")
    rows: list[MueDefault] = []
    for row_number, row in read_table(path, required):
        if row["code"] not in cpt_codes():
            raise MappingError(path.name, row_number, "code", f"'{row['code']}' is not in cpt_codes.csv")
        if not row["max_units"].isdigit() or int(row["max_units"]) < 1:
            raise MappingError(path.name, row_number, "max_units", f"'{row['max_units']}' is not a whole number "
                                                                   "of units above 0")
        indicator = parse_choice(path, row_number, "adjudication_indicator", row.get("adjudication_indicator", ""),
                                 frozenset({NOT_GIVEN, LINE_EDIT, POLICY_DATE_EDIT, CLINICAL_DATE_EDIT}))
        source_ids = parse_source_ids(path, row_number, "source_id", row["source_id"])
        if len(source_ids) != 1:
            raise MappingError(path.name, row_number, "source_id", "a value comes from exactly one source")
        period = parse_period(path, row_number, row)
        if any(other.value.code == row["code"] and _overlap(other.period, period) for other in rows):
            raise MappingError(path.name, row_number, "effective_from", f"overlaps another {row['code']} row")
        value = MueValue(row["code"], int(row["max_units"]), indicator, "", source_ids)
        rows.append(MueDefault(value, period, parse_confidence(path, row_number, row["confidence"])))
    return tuple(rows)


def _overlap(first: EffectivePeriod, second: EffectivePeriod) -> bool:
    starts_before_end = second.effective_to is None or (first.effective_from or dt.date.min) <= second.effective_to
    ends_after_start = first.effective_to is None or (second.effective_from or dt.date.min) <= first.effective_to
    return starts_before_end and ends_after_start


@cache
def mue_defaults() -> tuple[MueDefault, ...]:
    """The shipped defaults, loaded once per process."""
    return load_mue_defaults()


def mue_on(tables: MueTables | None, code: str, day: dt.date) -> MueValue | None:
    """The MUE of ``code`` on ``day``: from the installed table in force then, else a shipped default."""
    if tables is not None and tables.in_force_on(day):
        return tables.value_on(code, day)
    return next((row.value for row in mue_defaults() if row.value.code == code and row.period.covers(day)), None)
