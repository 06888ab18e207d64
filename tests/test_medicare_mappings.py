"""Loaders of the Medicare (NCD 30.3.3) tables and of the NCD 30.3.3 ICD-10-CM data set."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from needlecheck.mappings import icd10cm
from needlecheck.mappings.datasets import dataset_specs, loaded_dataset, using_datasets
from needlecheck.mappings.errors import MappingError
from needlecheck.mappings.icd10_ranges import RANGE_COLUMNS, icd10_key, load_icd10_ranges, ranges_holding
from needlecheck.mappings.liability_modifiers import LiabilityRoute, load_liability_modifiers, modifiers_by_route
from needlecheck.mappings.medicare_ncd import (
    COVERED_INDICATION,
    MINIMUM_DURATION_WEEKS,
    SCOPE_CATEGORIES,
    criterion_on,
    load_ncd_criteria,
    ncd_exclusions,
    ncd_in_force,
    ncd_scope,
)
from needlecheck.mappings.ncd_diagnoses import DATASET_NAME, NcdDiagnosisList, load_ncd_diagnoses, load_ncd_file

TEST_DATA = Path(__file__).resolve().parent / "data"
NCD_START = dt.date(2020, 1, 21)
NCD_URL = "https://www.cms.gov/Medicare-Coverage-Database/view/ncd.aspx?ncdid=373"
RANGE_HEADER = ",".join((*RANGE_COLUMNS, "effective_from", "effective_to")) + "\n"
CRITERIA_HEADER = "criterion,value,effective_from,effective_to,catalog_id,source_title,source_url,confidence\n"
MODIFIER_HEADER = "modifier,meaning,route,abn,exclusive,catalog_id,source_title,source_url,confidence\n"


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# The shipped tables


def test_the_ncd_is_in_force_from_2020_01_21_only() -> None:
    assert not ncd_in_force(NCD_START - dt.timedelta(days=1))
    assert ncd_in_force(NCD_START)
    duration = criterion_on(MINIMUM_DURATION_WEEKS, NCD_START)
    assert duration is not None and duration.number == 12 and duration.source_url.startswith("https://")
    assert criterion_on(COVERED_INDICATION, dt.date(2019, 12, 31)) is None


@pytest.mark.parametrize(("code", "category"), [
    ("M54.2", "non-low-back"), ("M79.7", "fibromyalgia"), ("M17.11", "osteoarthritis"), ("M54.12", "non-low-back"),
])
def test_scope_holds_the_sourced_non_low_back_codes(code: str, category: str) -> None:
    [row] = ranges_holding(ncd_scope(), code, dt.date(2024, 5, 1))
    assert row.category == category and row.source_url.startswith("https://")


@pytest.mark.parametrize("code", ["M54.50", "M54.16", "M54.17", "M47.816", "M79.18", "M51.26"])
def test_scope_leaves_low_back_and_unsettled_codes_alone(code: str) -> None:
    assert ranges_holding(ncd_scope(), code, dt.date(2024, 5, 1)) == ()


def test_scope_rows_start_with_the_ncd() -> None:
    assert ranges_holding(ncd_scope(), "M54.2", NCD_START - dt.timedelta(days=1)) == ()


@pytest.mark.parametrize(("code", "category"), [
    ("O26.891", "pregnancy"), ("O9A.111", "pregnancy"), ("Z33.1", "pregnancy"), ("C79.51", "neoplasm"),
    ("M46.25", "infection"), ("M45.6", "inflammatory-spine"), ("M96.1", "post-surgical"), ("Z98.1", "post-surgical"),
])
def test_exclusion_flags_by_category(code: str, category: str) -> None:
    [row] = ranges_holding(ncd_exclusions(), code, dt.date(2024, 5, 1))
    assert row.category == category and row.confidence == "low"


@pytest.mark.parametrize("code", ["P00.0", "D17.1", "M46.7", "M54.50", "Z98.0"])
def test_exclusions_do_not_reach_neighbouring_codes(code: str) -> None:
    assert ranges_holding(ncd_exclusions(), code, dt.date(2024, 5, 1)) == ()


def test_range_bounds_are_real_icd10cm_items() -> None:
    for row in (*ncd_scope(), *ncd_exclusions()):
        for key in (row.first, row.last):
            assert icd10cm.description(key) is not None, (row.label, key)


def test_liability_modifier_routes() -> None:
    assert modifiers_by_route(LiabilityRoute.STATUTORY_EXCLUSION) == ("GX", "GY")
    assert modifiers_by_route(LiabilityRoute.NOT_REASONABLE_AND_NECESSARY) == ("GA", "GZ")


# Malformed rows


@pytest.mark.parametrize(("row", "field"), [
    ("M54.2,M54.X!,Cervicalgia,non-low-back,IC-05,t,https://a.org,high,2020-01-21,\n", "last"),
    ("M54.2,M54,Cervicalgia,non-low-back,IC-05,t,https://a.org,high,2020-01-21,\n", "last"),
    ("M19,M15,Osteoarthritis,osteoarthritis,IC-05,t,https://a.org,high,2020-01-21,\n", "last"),
    ("M54.2,M54.2,Cervicalgia,neck,IC-05,t,https://a.org,high,2020-01-21,\n", "category"),
    ("M54.2,M54.2,Cervicalgia,non-low-back,IC-05,t,http://a.org,high,2020-01-21,\n", "source_url"),
    ("M54.2,M54.2,Cervicalgia,non-low-back,IC-05,t,https://a.org,sure,2020-01-21,\n", "confidence"),
    ("M54.2,M54.2,Cervicalgia,non-low-back,IC-05,t,https://a.org,high,2020-21-01,\n", "effective_from"),
    ("M54.2,M54.2,Cervicalgia,non-low-back,,t,https://a.org,high,2020-01-21,\n", "catalog_id"),
])
def test_malformed_range_rows_name_file_row_and_field(tmp_path: Path, row: str, field: str) -> None:
    path = write(tmp_path, "scope.csv", RANGE_HEADER + "G43,G43,Migraine,non-low-back,IC-05,t,https://a.org,medium,,\n"
                 + row)
    with pytest.raises(MappingError) as raised:
        load_icd10_ranges(path, SCOPE_CATEGORIES)
    assert (raised.value.file, raised.value.row, raised.value.field) == ("scope.csv", 3, field)


def test_a_range_table_without_a_source_column_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "scope.csv", "first,last,label,category,catalog_id,confidence\n")
    with pytest.raises(MappingError) as raised:
        load_icd10_ranges(path, SCOPE_CATEGORIES)
    assert (raised.value.row, raised.value.field) == (1, "source_title")


@pytest.mark.parametrize(("row", "field"), [
    (f"minimum-duration-weeks,twelve,2020-01-21,,MC-02,t,{NCD_URL},high\n", "value"),
    (f"maximum-sessions,20,2020-01-21,,MC-03,t,{NCD_URL},high\n", "criterion"),
    (f"minimum-duration-weeks,12,2020-01-21,2019-01-01,MC-02,t,{NCD_URL},high\n", "effective_to"),
    (f"minimum-duration-weeks,12,2020-01-21,,MC-02,t,{NCD_URL.replace('https', 'ftp')},high\n", "source_url"),
    (f"covered-indication,cLBP,2020-02-01,,MC-01,t,{NCD_URL},high\n", "effective_from"),
])
def test_malformed_criteria_rows(tmp_path: Path, row: str, field: str) -> None:
    first = f"covered-indication,cLBP,2020-01-21,,MC-01,t,{NCD_URL},high\n"
    with pytest.raises(MappingError) as raised:
        load_ncd_criteria(write(tmp_path, "criteria.csv", CRITERIA_HEADER + first + row))
    assert (raised.value.file, raised.value.row, raised.value.field) == ("criteria.csv", 3, field)


@pytest.mark.parametrize(("row", "field"), [
    ("GAX,m,statutory-exclusion,none,yes,MC-11,t,https://a.org,high\n", "modifier"),
    ("GA,m,statutory-exclusion,none,yes,MC-11,t,https://a.org,high\n", "modifier"),
    ("GY,m,excluded,none,yes,MC-11,t,https://a.org,high\n", "route"),
    ("GY,m,statutory-exclusion,maybe,yes,MC-11,t,https://a.org,high\n", "abn"),
    ("GY,m,statutory-exclusion,none,true,MC-11,t,https://a.org,high\n", "exclusive"),
])
def test_malformed_modifier_rows(tmp_path: Path, row: str, field: str) -> None:
    first = "GA,m,not-reasonable-and-necessary,mandatory,yes,MC-11,t,https://a.org,high\n"
    with pytest.raises(MappingError) as raised:
        load_liability_modifiers(write(tmp_path, "mods.csv", MODIFIER_HEADER + first + row))
    assert (raised.value.file, raised.value.row, raised.value.field) == ("mods.csv", 3, field)


# The NCD 30.3.3 ICD-10-CM data set


def test_the_data_set_is_declared_and_missing_until_installed(tmp_path: Path) -> None:
    spec = dataset_specs()[DATASET_NAME]
    assert spec.publisher_url.startswith("https://www.cms.gov/")
    with using_datasets(tmp_path):
        assert loaded_dataset(DATASET_NAME) is None


def test_the_sample_file_loads_with_dates_coverage_and_other_ncds_skipped() -> None:
    with using_datasets(TEST_DATA):
        diagnoses = loaded_dataset(DATASET_NAME)
    assert isinstance(diagnoses, NcdDiagnosisList)
    assert {row.code for row in diagnoses.rows} == {"M545", "M5450", "M5459", "M542"}
    assert diagnoses.covered_row("M54.5", dt.date(2021, 9, 30)) is not None
    assert diagnoses.covered_row("M54.5", dt.date(2021, 10, 1)) is None
    assert diagnoses.covered_row("m5450", dt.date(2021, 10, 1)) is not None
    assert diagnoses.covered_row("M54.2", dt.date(2024, 1, 1)) is None
    assert not diagnoses.in_force(dt.date(2020, 1, 20)) and diagnoses.in_force(NCD_START)


def test_tab_delimited_text_without_ncd_or_coverage_columns(tmp_path: Path) -> None:
    text = "ICD-10-CM Code\tLong Description\tEff Date\nM5450\tTEST ROW\t20211001\n"
    [row] = load_ncd_file(write(tmp_path, "list.txt", text))
    assert (row.code, row.covered, row.period.effective_from) == ("M5450", True, dt.date(2021, 10, 1))


@pytest.mark.parametrize(("body", "row", "field"), [
    ("30.3.3,M54.50,TEST,Y,13/01/2021,\n", 3, "effective_from"),
    ("30.3.3,M54.50,TEST,Y,10/01/2021,09/30/2021\n", 3, "effective_to"),
    ("30.3.3,M54.50,TEST,maybe,10/01/2021,\n", 3, "coverage"),
    ("30.3.3,5450,TEST,Y,10/01/2021,\n", 3, "code"),
    ("30.3.3,,TEST,Y,10/01/2021,\n", 3, "code"),
    ("30.3.3,M54.50,,Y,10/01/2021,\n", 3, "description"),
])
def test_malformed_ncd_rows_name_file_line_and_column(tmp_path: Path, body: str, row: int, field: str) -> None:
    text = "TEST TITLE LINE\nNCD,ICD-10 Code,Description,Covered,Effective Date,Termination Date\n" + body
    with pytest.raises(MappingError) as raised:
        load_ncd_diagnoses([write(tmp_path, "ncd.csv", text)])
    assert (raised.value.file, raised.value.row, raised.value.field) == ("ncd.csv", row, field)


def test_a_file_without_the_code_or_description_column_is_refused(tmp_path: Path) -> None:
    with pytest.raises(MappingError) as raised:
        load_ncd_diagnoses([write(tmp_path, "a.csv", "NCD,Description\n30.3.3,x\n")])
    assert (raised.value.file, raised.value.row, raised.value.field) == ("a.csv", 1, "code")
    with pytest.raises(MappingError) as raised:
        load_ncd_diagnoses([write(tmp_path, "b.csv", "title\nNCD,ICD-10 Code\n30.3.3,M54.50\n")])
    assert (raised.value.file, raised.value.row, raised.value.field) == ("b.csv", 2, "description")


def test_a_file_of_another_ncd_only_is_refused(tmp_path: Path) -> None:
    with pytest.raises(MappingError, match=r"no rows for NCD 30\.3\.3"):
        load_ncd_diagnoses([write(tmp_path, "other.csv", "NCD,ICD-10 Code,Description\n210.3,Z12.11,TEST\n")])


def test_icd10_key_drops_dots_and_case() -> None:
    assert icd10_key(" m54.50 ") == "M5450"
