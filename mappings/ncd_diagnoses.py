"""The NCD 30.3.3 ICD-10-CM list: the diagnoses CMS's claim edits accept for acupuncture and dry needling.

The list is the NCD coding spreadsheet attached to CR 11755 and to CMS's later quarterly "ICD-10 and other
coding revisions to NCDs" change requests; the catalog could not find it in public sources (MC-10, IC-03),
so it is a data set an operator installs. Contractors' guidance says to open the NCD's transmittal from
CMS's ICD-10 coverage page and follow the link to its spreadsheet, and that not every code on such a
spreadsheet is a covered one; hence the optional coverage column.

The header row of the CR 11755 spreadsheet itself was not seen, so the loader reads the layout of CMS's NCD
coding spreadsheets by column meaning, not by exact heading: save the NCD 30.3.3 sheet as CSV (or as
tab-delimited text) and place it in ``<datasets dir>/ncd-30.3.3-icd10/``. Columns, case and punctuation
ignored:

========================  ======================================================  =========
meaning                   headings accepted                                       required
========================  ======================================================  =========
ICD-10-CM code            ICD-10 Code, ICD-10-CM Code, ICD-10, ICD-10 Dx, Code…   yes
description               Description, Long Description, Descriptor…              yes
NCD                       NCD, NCD #, NCD Number, NCD Section                      no (1)
coverage                  Covered, Coverage, Covered/Non-Covered, Coverage         no
                          Indicator (Y/N, yes/no, covered/non-covered)
effective date            Effective Date, Eff Date, Begin Date, Start Date         no
termination date          Termination Date, Term Date, End Date, Deleted Date      no
========================  ======================================================  =========

(1) When an NCD column is there, rows of other NCDs are skipped (a workbook may carry several); without it
every row is taken as NCD 30.3.3. Title lines above the header are skipped; dates may be ISO, MM/DD/YYYY
or YYYYMMDD. Row numbers in errors are line numbers of the file.
"""

from __future__ import annotations

import csv
import datetime as dt
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from needlecheck.mappings.datasets import DataSetSpec
from needlecheck.mappings.errors import MappingError
from needlecheck.mappings.icd10_ranges import icd10_key, is_icd10cm_shaped
from needlecheck.mappings.tables import EffectivePeriod

NCD_SECTION = "30.3.3"
DATASET_NAME = "ncd-30.3.3-icd10"

_HEADINGS: dict[str, frozenset[str]] = {
    "code": frozenset({"icd 10 code", "icd 10 cm code", "icd 10", "icd 10 cm", "icd 10 dx", "icd 10 dx code",
                       "icd 10 cm dx", "icd 10 diagnosis code", "icd 10 cm diagnosis code", "diagnosis code",
                       "dx code", "code"}),
    "description": frozenset({"description", "long description", "short description", "descriptor",
                              "icd 10 description", "icd 10 cm description", "code description"}),
    "ncd": frozenset({"ncd", "ncd number", "ncd section", "ncd id", "ncd manual section"}),
    "coverage": frozenset({"covered", "coverage", "covered non covered", "coverage indicator", "covered indicator"}),
    "effective_from": frozenset({"effective date", "eff date", "begin date", "start date", "effective from"}),
    "effective_to": frozenset({"termination date", "term date", "end date", "effective to", "deleted date",
                               "deletion date", "ending effective date"}),
}
_REQUIRED = ("code", "description")
_COVERED = frozenset({"y", "yes", "covered", "c", "1", "true"})
_NOT_COVERED = frozenset({"n", "no", "non covered", "not covered", "noncovered", "nc", "0", "false"})


@dataclass(frozen=True)
class NcdDiagnosis:
    """One row of the list: a code, whether it is covered, and the dates the row is in force."""

    code: str
    description: str
    covered: bool
    period: EffectivePeriod
    file: str
    row: int


@dataclass(frozen=True)
class NcdDiagnosisList:
    """The loaded NCD 30.3.3 list, answering "is this diagnosis covered on this date?"."""

    rows: tuple[NcdDiagnosis, ...]

    def in_force(self, day: dt.date) -> bool:
        """Whether any row applies on ``day`` (a list that starts later cannot judge an earlier service)."""
        return any(row.period.covers(day) for row in self.rows)

    def covered_row(self, code: str, day: dt.date) -> NcdDiagnosis | None:
        """The covered row for ``code`` in force on ``day``, or None when the code is not covered then."""
        key = icd10_key(code)
        for row in self.rows:
            if row.code == key and row.covered and row.period.covers(day):
                return row
        return None


def _heading(text: str) -> str:
    return " ".join(re.sub(r"[^a-z0-9]+", " ", text.lower()).split())


def _columns(header: list[str]) -> dict[str, int]:
    """Column index of each meaning found in ``header``; the first matching column wins."""
    found: dict[str, int] = {}
    for index, text in enumerate(header):
        heading = _heading(text)
        for meaning, accepted in _HEADINGS.items():
            if heading in accepted and meaning not in found:
                found[meaning] = index
    return found


def _rows(path: Path) -> Iterator[tuple[int, list[str]]]:
    """The file's records with their line numbers, as CSV or, for .txt/.tsv or a tab in line 1, as TSV."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        # Spreadsheet exports on Windows are often cp1252; a description's curly quote must not stop start-up.
        text = path.read_text(encoding="cp1252")
    lines = text.splitlines()
    tabbed = path.suffix.lower() in {".txt", ".tsv", ".tab"} or (bool(lines) and "\t" in lines[0])
    reader = csv.reader(lines, delimiter="\t" if tabbed else ",")
    for line_number, record in enumerate(reader, start=1):
        yield line_number, [cell.strip() for cell in record]


def _parse_day(path: Path, row: int, field: str, value: str) -> dt.date | None:
    if not value:
        return None
    for layout in ("%Y-%m-%d", "%m/%d/%Y", "%m/%d/%y", "%Y%m%d"):
        try:
            return dt.datetime.strptime(value, layout).date()
        except ValueError:
            continue
    raise MappingError(path.name, row, field, f"'{value}' is not a date (ISO, MM/DD/YYYY or YYYYMMDD)")


def _ncd_section(value: str) -> str:
    """"NCD 30.3.3" and "30.3.3" name the same NCD."""
    return re.sub(r"^ncd\s*#?\s*", "", value.strip(), flags=re.IGNORECASE)


def load_ncd_file(path: Path) -> list[NcdDiagnosis]:
    """The NCD 30.3.3 rows of one file, validated; MappingError names the file, line and column."""
    records = _rows(path)
    columns: dict[str, int] = {}
    for line_number, record in records:
        columns = _columns(record)
        if "code" in columns:
            header_line = line_number
            break
    else:
        raise MappingError(path.name, 1, "code", "no header row with an ICD-10 code column was found")
    for meaning in _REQUIRED:
        if meaning not in columns:
            raise MappingError(path.name, header_line, meaning, "column is missing from the header")

    def cell(record: list[str], meaning: str) -> str:
        index = columns.get(meaning)
        return record[index] if index is not None and index < len(record) else ""

    rows: list[NcdDiagnosis] = []
    for line_number, record in records:
        if not any(record):
            continue
        if "ncd" in columns and _ncd_section(cell(record, "ncd")) != NCD_SECTION:
            continue
        code = cell(record, "code")
        if not code:
            raise MappingError(path.name, line_number, "code", "must not be empty")
        if not is_icd10cm_shaped(code):
            raise MappingError(path.name, line_number, "code", f"'{code}' is not an ICD-10-CM code")
        description = cell(record, "description")
        if not description:
            raise MappingError(path.name, line_number, "description", "must not be empty")
        covered = True
        if "coverage" in columns:
            flag = _heading(cell(record, "coverage"))
            if flag not in _COVERED | _NOT_COVERED:
                raise MappingError(path.name, line_number, "coverage",
                                   f"'{cell(record, 'coverage')}' is neither covered (Y) nor non-covered (N)")
            covered = flag in _COVERED
        start = _parse_day(path, line_number, "effective_from", cell(record, "effective_from"))
        end = _parse_day(path, line_number, "effective_to", cell(record, "effective_to"))
        if start and end and end < start:
            raise MappingError(path.name, line_number, "effective_to", "ends before the effective date")
        rows.append(NcdDiagnosis(icd10_key(code), description, covered, EffectivePeriod(start, end), path.name,
                                 line_number))
    return rows


def load_ncd_diagnoses(files: list[Path]) -> NcdDiagnosisList:
    """Every NCD 30.3.3 row of the installed files; installed files without one are refused."""
    rows: list[NcdDiagnosis] = []
    for path in files:
        file_rows = load_ncd_file(path)
        if not file_rows:
            raise MappingError(path.name, None, "ncd", f"has no rows for NCD {NCD_SECTION}")
        rows.extend(file_rows)
    return NcdDiagnosisList(tuple(rows))


DATASET = DataSetSpec(
    name=DATASET_NAME,
    title="the NCD 30.3.3 ICD-10-CM list (CR 11755 coding spreadsheet)",
    publisher_url="https://www.cms.gov/Medicare/Coverage/CoverageGenInfo/ICD10.html",
    file_format="CSV or tab-delimited export of CMS's NCD 30.3.3 coding spreadsheet (ICD-10 code, description, "
                "optional NCD, coverage, effective and termination date columns)",
    load=load_ncd_diagnoses,
)
