"""The Medicare NCCI Practitioner PTP (procedure-to-procedure) edits, read from CMS's quarterly files.

Layout (per CMS's practitioner PTP files, tab-separated text): a copyright preamble, a header row
``Column 1 | Column 2 | *=in existence prior to 1996 | Effective Date | Deletion Date *=no data |
Modifier 0=not allowed 1=allowed 9=not applicable | PTP Edit Rationale`` whose text may wrap onto
continuation rows, then one row per edit. Dates are ``YYYYMMDD``; a deletion date of ``*`` means the
edit is active. The deletion date is taken as the last day the edit applies.

The full tables hold millions of pairs; only pairs with at least one code of ``cpt_codes.csv`` (the
codes this checker reasons about) are kept, which is every pair a dry-needling line can be part of.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from needlecheck.mappings.code_pairs import CONFIDENCES, parse_source_id
from needlecheck.mappings.cpt import cpt_codes
from needlecheck.mappings.datasets import DataSetSpec
from needlecheck.mappings.errors import MappingError
from needlecheck.mappings.ncci_files import normalized_cell, parse_cms_date, parse_hcpcs, rows_after_header
from needlecheck.mappings.tables import DATA_DIR, parse_choice, read_table

DATASET_NAME = "ncci-ptp-practitioner"
MODIFIERS_FILE = DATA_DIR / "ncci_modifiers.csv"
NOT_ALLOWED, ALLOWED, NOT_APPLICABLE = "0", "1", "9"
COLUMNS = 7


@dataclass(frozen=True)
class PtpEdit:
    """One edit: ``column_2`` is denied when reported with ``column_1`` on one date, unless a modifier may bypass it."""

    column_1: str
    column_2: str
    existed_before_1996: bool
    effective: dt.date
    deleted: dt.date | None
    modifier_indicator: str
    rationale: str

    def in_force_on(self, day: dt.date) -> bool:
        """Whether the edit applies to services on ``day``."""
        return self.effective <= day and (self.deleted is None or day <= self.deleted)


@dataclass(frozen=True)
class PtpEdits:
    """The loaded edits, by (column 1, column 2)."""

    by_pair: dict[tuple[str, str], tuple[PtpEdit, ...]] = field(default_factory=dict)

    def edit_between(self, code_a: str, code_b: str, day: dt.date) -> PtpEdit | None:
        """The edit in force on ``day`` between two codes, in either column order."""
        for pair in ((code_a, code_b), (code_b, code_a)):
            for edit in self.by_pair.get(pair, ()):
                if edit.in_force_on(day):
                    return edit
        return None


def load_ncci_modifiers(path: Path = MODIFIERS_FILE) -> frozenset[str]:
    """The NCCI-associated modifiers that may bypass an edit with modifier indicator 1 (``ncci_modifiers.csv``)."""
    modifiers: set[str] = set()
    kinds = frozenset({"distinct-service", "evaluation-management", "anatomic", "other"})
    for row_number, row in read_table(path, ("modifier", "kind", "source_id", "confidence")):
        if row["modifier"] in modifiers:
            raise MappingError(path.name, row_number, "modifier", f"{row['modifier']} appears twice")
        parse_choice(path, row_number, "kind", row["kind"], kinds)
        parse_source_id(path, row_number, "source_id", row["source_id"])
        parse_choice(path, row_number, "confidence", row["confidence"], CONFIDENCES)
        modifiers.add(row["modifier"])
    return frozenset(modifiers)


@cache
def ncci_modifiers() -> frozenset[str]:
    """The table shipped in ``mappings/``, loaded once per process."""
    return load_ncci_modifiers()


def _is_header(cells: list[str]) -> bool:
    return len(cells) >= 2 and normalized_cell(cells[0]) == "column 1" and normalized_cell(cells[1]) == "column 2"


def _parse_row(path: Path, line_number: int, cells: list[str]) -> PtpEdit:
    if len(cells) < COLUMNS - 1:
        raise MappingError(path.name, line_number, "row", f"has {len(cells)} columns, expected {COLUMNS}")
    cells = (cells + [""] * COLUMNS)[:COLUMNS]
    column_1, column_2, before_1996, effective, deleted, indicator, rationale = cells
    if before_1996 not in ("", "*"):
        raise MappingError(path.name, line_number, "*=in existence prior to 1996", f"'{before_1996}' is not '*'")
    if indicator not in (NOT_ALLOWED, ALLOWED, NOT_APPLICABLE):
        raise MappingError(path.name, line_number, "Modifier", f"'{indicator}' is not 0, 1 or 9")
    return PtpEdit(
        column_1=parse_hcpcs(path, line_number, "Column 1", column_1),
        column_2=parse_hcpcs(path, line_number, "Column 2", column_2),
        existed_before_1996=before_1996 == "*",
        effective=parse_cms_date(path, line_number, "Effective Date", effective),
        deleted=None if deleted in ("", "*") else parse_cms_date(path, line_number, "Deletion Date", deleted),
        modifier_indicator=indicator,
        rationale=rationale,
    )


def load_ptp_edits(files: list[Path]) -> PtpEdits:
    """Read every PTP file of the data set (CMS splits the table into several parts)."""
    relevant = set(cpt_codes())
    pairs: dict[tuple[str, str], list[PtpEdit]] = {}
    for path in files:
        for line_number, _header, cells in rows_after_header(path, _is_header):
            if not cells[0] and (len(cells) < 2 or not cells[1]):
                continue  # the header's continuation rows ("0=not allowed", "*=no data" ...)
            edit = _parse_row(path, line_number, cells)
            if edit.column_1 in relevant or edit.column_2 in relevant:
                pairs.setdefault((edit.column_1, edit.column_2), []).append(edit)
    return PtpEdits({pair: tuple(edits) for pair, edits in pairs.items()})


DATASET = DataSetSpec(
    name=DATASET_NAME,
    title="the Medicare NCCI Practitioner PTP edits",
    publisher_url="https://www.cms.gov/medicare-medicaid-coordination/national-correct-coding-initiative-ncci/"
                  "ncci-medicare/medicare-ncci-procedure-procedure-ptp-edits",
    file_format="CMS practitioner PTP edit files, tab-separated .txt (or the xlsx saved as .csv), all parts",
    load=load_ptp_edits,
)
