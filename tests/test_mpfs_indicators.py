"""The sourced MPFS indicators (FE-06) and shipped MUE defaults (FE-07): what the tables hold, which dates they
cover, that an installed CMS MUE table supersedes a default, and that a bad row names its file, row and field."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from needlecheck.mappings.errors import MappingError
from needlecheck.mappings.mpfs_indicators import MPFS_INDICATORS_FILE, load_mpfs_indicators, mpfs_indicators_for
from needlecheck.mappings.ncci_mue import MUE_DEFAULTS_FILE, MueTable, MueTables, MueValue, load_mue_defaults, mue_on
from needlecheck.mappings.sources import policy_source

DAY = dt.date(2026, 3, 2)
INDICATORS_HEADER = MPFS_INDICATORS_FILE.read_text(encoding="utf-8").splitlines()[0]
GOOD_INDICATORS = "20560,2025,2025-01-01,,A,XXX,0,0,1,0,0,0,09,2,FE-06,medium"
MUE_HEADER = MUE_DEFAULTS_FILE.read_text(encoding="utf-8").splitlines()[0]
GOOD_MUE = "20560,1,,2025-01-01,,FE-07,medium"


def test_20560_has_the_indicators_the_source_gives_from_2025() -> None:
    row = mpfs_indicators_for("20560", DAY)
    assert row is not None and row.source_id == "FE-06" and row.confidence == "medium"
    assert (row.status, row.global_days, row.multiple_procedure, row.bilateral_surgery, row.pc_tc,
            row.physician_supervision, row.assistant_surgeon, row.co_surgeons, row.team_surgery,
            row.type_of_service) == ("A", "XXX", "0", "0", "0", "09", "1", "0", "0", "2")
    assert not row.has_global_period and not row.bilateral_adjustment
    assert mpfs_indicators_for("20560", dt.date(2024, 12, 31)) is None  # the source is the 2025 table
    assert mpfs_indicators_for("20561", DAY) is None  # not given: no row by analogy


def test_the_sources_name_the_code_page_and_the_cms_file_to_verify_in() -> None:
    indicators, mue = policy_source("FE-06"), policy_source("FE-07")
    assert "code page for 20560" in indicators.title and "CMS" in indicators.title
    assert indicators.url == "https://www.cms.gov/medicare/payment/fee-schedules/physician/pfs-relative-value-files"
    assert mue.url == ("https://www.cms.gov/medicare/coding-billing/national-correct-coding-initiative-ncci-edits/"
                       "medicare-ncci-medically-unlikely-edits")
    assert indicators.confidence == mue.confidence == "medium"
    assert "unverified" in mue.statement


def test_the_mue_default_is_1_for_20560_and_absent_for_20561() -> None:
    value = mue_on(None, "20560", DAY)
    assert value is not None
    assert (value.max_units, value.adjudication_indicator, value.source_ids) == (1, "", ("FE-07",))
    assert not value.per_date  # the MAI is not given: only a line above the value is certain to exceed it
    assert mue_on(None, "20561", DAY) is None
    assert mue_on(None, "20560", dt.date(2024, 6, 1)) is None


def test_an_installed_table_supersedes_the_default_even_without_a_row_for_the_code() -> None:
    installed = MueTables((MueTable(dt.date(2026, 1, 1), {"20560": MueValue("20560", 3, "3", "test")}),))
    assert mue_on(installed, "20560", DAY).max_units == 3  # type: ignore[union-attr]
    assert mue_on(MueTables((MueTable(dt.date(2026, 1, 1), {}),)), "20560", DAY) is None
    # Before the installed table starts, the shipped default still applies.
    assert mue_on(installed, "20560", dt.date(2025, 6, 1)).max_units == 1  # type: ignore[union-attr]


@pytest.mark.parametrize(("row", "field"), [
    (GOOD_INDICATORS.replace("20560,", "2056X,", 1), "code"),
    (GOOD_INDICATORS.replace(",2025,", ",2026,", 1), "effective_from"),
    (GOOD_INDICATORS.replace(",XXX,", ",30,"), "global_days"),
    (GOOD_INDICATORS.replace(",A,XXX,0,0,", ",A,XXX,0,5,"), "bilateral_surgery"),
    (GOOD_INDICATORS.replace(",09,", ",9,"), "physician_supervision"),
    (GOOD_INDICATORS.replace(",09,2,", ",09,22,"), "type_of_service"),
    (GOOD_INDICATORS.replace("FE-06", "FE-99"), "source_id"),
    (GOOD_INDICATORS.replace(",medium", ",sure"), "confidence"),
])
def test_a_bad_indicator_row_names_file_row_and_field(tmp_path: Path, row: str, field: str) -> None:
    path = tmp_path / "mpfs_indicators.csv"
    path.write_text(f"{INDICATORS_HEADER}\n{row}\n", encoding="utf-8")
    with pytest.raises(MappingError) as raised:
        load_mpfs_indicators(path)
    assert (raised.value.file, raised.value.row, raised.value.field) == ("mpfs_indicators.csv", 2, field)


def test_two_indicator_rows_starting_together_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "mpfs_indicators.csv"
    path.write_text(f"{INDICATORS_HEADER}\n{GOOD_INDICATORS}\n{GOOD_INDICATORS}\n", encoding="utf-8")
    with pytest.raises(MappingError, match="second 20560 row"):
        load_mpfs_indicators(path)


@pytest.mark.parametrize(("row", "field"), [
    (GOOD_MUE.replace("20560,", "2056X,", 1), "code"),
    (GOOD_MUE.replace(",1,", ",0,", 1), "max_units"),
    (GOOD_MUE.replace(",1,", ",one,", 1), "max_units"),
    (GOOD_MUE.replace(",1,,", ",1,4,", 1), "adjudication_indicator"),
    (GOOD_MUE.replace("FE-07", "FE-99"), "source_id"),
    (GOOD_MUE.replace("2025-01-01", "2025-1-1"), "effective_from"),
])
def test_a_bad_mue_default_names_file_row_and_field(tmp_path: Path, row: str, field: str) -> None:
    path = tmp_path / "ncci_mue_defaults.csv"
    path.write_text(f"{MUE_HEADER}\n{row}\n", encoding="utf-8")
    with pytest.raises(MappingError) as raised:
        load_mue_defaults(path)
    assert (raised.value.file, raised.value.row, raised.value.field) == ("ncci_mue_defaults.csv", 2, field)


def test_overlapping_mue_defaults_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "ncci_mue_defaults.csv"
    later = GOOD_MUE.replace("2025-01-01", "2026-01-01")
    path.write_text(f"{MUE_HEADER}\n{GOOD_MUE}\n{later}\n", encoding="utf-8")
    with pytest.raises(MappingError, match="overlaps"):
        load_mue_defaults(path)
    closed = GOOD_MUE.replace("2025-01-01,,", "2025-01-01,2025-12-31,")
    path.write_text(f"{MUE_HEADER}\n{closed}\n{later}\n", encoding="utf-8")
    assert len(load_mue_defaults(path)) == 2
