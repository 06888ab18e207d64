"""DN-ICD-001: ICD-10-CM diagnoses must be billable on the date of service."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from needlecheck.mappings.errors import MappingError
from needlecheck.mappings.icd10cm import CodeState, load_icd10cm_changes, normalize_code, status_on
from needlecheck.plugin.rules.diagnosis_code_valid_on_date import check_diagnosis_code_valid_on_date as check
from needlecheck.plugin.terms import ICD10CM_SYSTEM, Coding
from tests.support.builders import context, line, two_muscles

M54_SPLIT = dt.date(2021, 10, 1)
M79_SPLIT = dt.date(2022, 10, 1)
DAY_BEFORE = dt.timedelta(days=1)


def icd(code: str, system: str = ICD10CM_SYSTEM) -> tuple[Coding, ...]:
    return (Coding(system, code),)


def findings_for(code: str, day: dt.date, system: str = ICD10CM_SYSTEM) -> list:
    return check(context(line("20560", *two_muscles(), day=day, sequence=1, indications=icd(code, system))))


def test_m54_5_on_the_day_it_was_deleted_names_its_replacements() -> None:
    [finding] = findings_for("M54.5", M54_SPLIT)
    assert finding.rule_id == "DN-ICD-001"
    assert "M54.50, M54.51 or M54.59" in finding.summary
    assert "deleted on 2021-10-01" in finding.detail and "claim line 1" in finding.detail.lower()


def test_m54_5_the_day_before_it_was_deleted_is_fine() -> None:
    assert findings_for("M54.5", M54_SPLIT - DAY_BEFORE) == []


def test_m54_50_before_it_existed_points_back_to_m54_5() -> None:
    [finding] = findings_for("M54.50", M54_SPLIT - DAY_BEFORE)
    assert "exists only from 2021-10-01" in finding.detail and "Use M54.5." in finding.detail
    assert findings_for("M54.50", M54_SPLIT) == []


def test_m79_1_is_a_header_from_2022_10_01_with_a_caveat_on_the_date() -> None:
    [finding] = findings_for("M79.1", M79_SPLIT)
    assert "M79.10, M79.11, M79.12 or M79.18" in finding.detail
    assert "low-medium" in finding.detail
    assert findings_for("M79.1", M79_SPLIT - DAY_BEFORE) == []


def test_m79_18_before_the_split() -> None:
    [finding] = findings_for("M79.18", M79_SPLIT - DAY_BEFORE)
    assert "Use M79.1." in finding.detail
    assert findings_for("M79.18", M79_SPLIT) == []


def test_codes_without_dots_or_in_lower_case_are_read_as_codes() -> None:
    assert findings_for("M5450", M54_SPLIT) == []
    assert findings_for("m54.2", M54_SPLIT) == []
    [finding] = findings_for("M545", M54_SPLIT)
    assert 'sent as "M545"' in finding.detail


def test_a_header_from_the_release_names_its_billable_codes() -> None:
    [finding] = findings_for("M54", M54_SPLIT)
    assert "is a header" in finding.detail and "M54.00" in finding.detail and "more" in finding.detail
    assert "M54.2" not in finding.detail  # the list is cut at a readable length


def test_an_unknown_code_names_the_codes_of_its_nearest_header() -> None:
    [finding] = findings_for("M54.57", M54_SPLIT)
    assert "not an ICD-10-CM code" in finding.detail and "M54.59" in finding.detail


def test_other_code_systems_and_non_dry_needling_lines_are_not_checked() -> None:
    assert findings_for("M54.5", M54_SPLIT, system="http://hl7.org/fhir/sid/icd-10") == []
    other = line("97110", day=M54_SPLIT, sequence=1, indications=icd("M54.5"))
    assert check(context(other)) == []


def test_two_bad_codes_on_one_line_make_one_finding() -> None:
    codes = (Coding(ICD10CM_SYSTEM, "M54.5"), Coding(ICD10CM_SYSTEM, "M79.1"))
    [finding] = check(context(line("20561", day=dt.date(2023, 2, 14), sequence=1, indications=codes)))
    assert "M54.5 and M79.1" in finding.summary


def test_status_of_a_billable_code_from_the_release() -> None:
    assert status_on("M79.18", dt.date(2026, 3, 2)).state is CodeState.BILLABLE
    assert normalize_code(" m7918 ") == "M79.18"


@pytest.mark.parametrize(("row", "field"), [
    ("M54.5,deleted,2021-13-01,M54.50,IC-01,high", "date"),
    ("M54.5,vanished,2021-10-01,M54.50,IC-01,high", "change"),
    ("M54.5,deleted,2021-10-01,,IC-01,high", "replaced_by"),
    ("M54.5,deleted,2021-10-01,M54.50,NO-SUCH-SOURCE,high", "source"),
    ("M54.5,deleted,2021-10-01,M54.50,IC-01,certain", "confidence"),
])
def test_malformed_change_rows_name_file_row_and_field(tmp_path: Path, row: str, field: str) -> None:
    table = tmp_path / "icd10cm_changes.csv"
    table.write_text(f"code,change,date,replaced_by,source,confidence\nM79.1,became-header,2022-10-01,,IC-02,low\n{row}\n")
    with pytest.raises(MappingError) as raised:
        load_icd10cm_changes(table)
    assert (raised.value.file, raised.value.row, raised.value.field) == ("icd10cm_changes.csv", 3, field)


def test_a_missing_column_is_named(tmp_path: Path) -> None:
    table = tmp_path / "icd10cm_changes.csv"
    table.write_text("code,change,replaced_by,source,confidence\nM54.5,deleted,M54.50,IC-01,high\n")
    with pytest.raises(MappingError) as raised:
        load_icd10cm_changes(table)
    assert (raised.value.row, raised.value.field) == (1, "date")
