"""DN-MCR-001: Medicare covers dry needling only for chronic low back pain (NCD 30.3.3)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest

from needlecheck.mappings.datasets import using_datasets
from needlecheck.plugin.context import ServiceLine
from needlecheck.plugin.findings import Severity
from needlecheck.plugin.rules.medicare_clbp_diagnosis import check_medicare_clbp_diagnosis as check
from needlecheck.plugin.terms import SNOMED_SYSTEM, Coding
from tests.support.builders import MYALGIA, line, two_muscles
from tests.support.medicare import (
    CERVICALGIA,
    COMMERCIAL,
    FIBROMYALGIA,
    LOW_BACK_PAIN,
    MEDICARE_ADVANTAGE,
    PHYSICAL_THERAPIST,
    PHYSICIAN,
    TEST_DATASETS,
    by,
    icd,
    medicare,
)

NCD_START = dt.date(2020, 1, 21)


def dn(*indications: Coding, day: dt.date = dt.date(2026, 3, 2), modifiers: tuple[str, ...] = ()) -> ServiceLine:
    return by(line("20560", *two_muscles(), sequence=1, day=day, indications=indications, modifiers=modifiers),
              PHYSICIAN)


@pytest.fixture
def no_list(tmp_path: Path) -> Iterator[None]:
    with using_datasets(tmp_path):
        yield


@pytest.fixture
def sample_list() -> Iterator[None]:
    with using_datasets(TEST_DATASETS):
        yield


@pytest.mark.usefixtures("no_list")
def test_cervicalgia_alone_is_outside_the_ncd_without_the_list() -> None:
    [finding] = check(medicare(dn(CERVICALGIA)))
    assert finding.rule_id == "DN-MCR-001" and finding.severity is Severity.WARNING
    assert "M54.2" in finding.detail and "claim line 1" in finding.detail.lower()
    assert "**GA**" in finding.detail and "**GZ**" in finding.detail and "MC-13" in finding.detail
    assert len(finding.summary) < 140


@pytest.mark.usefixtures("no_list")
def test_fibromyalgia_is_outside_the_ncd() -> None:
    [finding] = check(medicare(dn(FIBROMYALGIA)))
    assert finding.severity is Severity.WARNING and "fibromyalgia" in finding.detail


@pytest.mark.usefixtures("no_list")
@pytest.mark.parametrize("diagnoses", [(LOW_BACK_PAIN,), (CERVICALGIA, LOW_BACK_PAIN), (icd("M51.16"),)])
def test_without_the_list_a_low_back_code_could_not_be_checked(diagnoses: tuple[Coding, ...]) -> None:
    [finding] = check(medicare(dn(*diagnoses)))
    assert finding.unchecked and finding.severity is Severity.INFO and "not installed" in finding.detail


@pytest.mark.usefixtures("no_list")
@pytest.mark.parametrize("diagnosis", [MYALGIA, icd("M62.830", "Muscle spasm of back")])
def test_without_the_list_a_diagnosis_that_is_not_low_back_pain_is_a_warning(diagnosis: Coding) -> None:
    # Issue 9, finding 9: trapezius myalgia and back muscle spasm were only "checks could not run".
    [finding] = check(medicare(dn(diagnosis)))
    assert not finding.unchecked and finding.severity is Severity.WARNING and finding.decisive
    assert str(diagnosis.code) in finding.detail and "names no low back region" in finding.detail
    assert "is not low back pain" in finding.detail and len(finding.summary) <= 100


@pytest.mark.usefixtures("no_list")
def test_never_calls_myalgia_low_back_pain() -> None:
    [finding] = check(medicare(dn(MYALGIA)))
    assert "M79.18 (Myalgia, other site) low back pain" not in finding.detail
    assert "chronic low back pain" in finding.summary  # what to code, not what M79.18 is


@pytest.mark.usefixtures("sample_list")
def test_a_code_on_the_installed_list_is_covered() -> None:
    assert check(medicare(dn(LOW_BACK_PAIN))) == []
    assert check(medicare(dn(CERVICALGIA, LOW_BACK_PAIN))) == []


@pytest.mark.usefixtures("sample_list")
@pytest.mark.parametrize("diagnosis", [CERVICALGIA, MYALGIA])
def test_codes_not_covered_on_the_installed_list_are_reported(diagnosis: Coding) -> None:
    [finding] = check(medicare(dn(diagnosis)))
    assert finding.severity is Severity.WARNING and "installed NCD 30.3.3" in finding.detail


@pytest.mark.usefixtures("sample_list")
def test_the_list_row_in_force_on_the_date_of_service_decides() -> None:
    # The sample list ends M54.5 on 2021-09-30, as ICD-10-CM split it the next day.
    assert check(medicare(dn(icd("M54.5"), day=dt.date(2021, 9, 30)))) == []
    [finding] = check(medicare(dn(icd("M54.5"), day=dt.date(2021, 10, 1))))
    assert finding.severity is Severity.WARNING


@pytest.mark.usefixtures("sample_list")
def test_before_2020_01_21_medicare_covered_nothing() -> None:
    [finding] = check(medicare(dn(icd("M54.5"), day=NCD_START - dt.timedelta(days=1))))
    assert finding.severity is Severity.WARNING and "2020-01-21" in finding.summary
    assert check(medicare(dn(icd("M54.5"), day=NCD_START))) == []


@pytest.mark.usefixtures("no_list")
def test_cervicalgia_on_the_first_day_of_the_ncd_is_reported_as_outside_it() -> None:
    [finding] = check(medicare(dn(CERVICALGIA, day=NCD_START)))
    assert "chronic low back pain" in finding.summary


@pytest.mark.usefixtures("no_list")
def test_medicare_advantage_gets_no_abn_modifier_advice() -> None:
    [finding] = check(medicare(dn(CERVICALGIA), coverage=MEDICARE_ADVANTAGE))
    assert finding.severity is Severity.WARNING
    assert "Medicare Advantage" in finding.detail and "**GA**" not in finding.detail


@pytest.mark.usefixtures("no_list")
def test_other_payers_and_unknown_coverage_are_not_checked() -> None:
    assert check(medicare(dn(CERVICALGIA), coverage=COMMERCIAL)) == []
    assert check(medicare(dn(CERVICALGIA), coverage=None)) == []


@pytest.mark.usefixtures("no_list")
def test_a_physical_therapist_line_is_left_to_the_statutory_exclusion_rule() -> None:
    pt_line = by(line("20560", *two_muscles(), sequence=1, indications=(CERVICALGIA,)), PHYSICAL_THERAPIST)
    assert check(medicare(pt_line)) == []
    [finding] = check(medicare(pt_line, coverage=MEDICARE_ADVANTAGE))
    assert finding.severity is Severity.WARNING


@pytest.mark.usefixtures("no_list")
def test_a_declared_expected_denial_is_only_information_with_the_abn_advice() -> None:
    [finding] = check(medicare(dn(CERVICALGIA, modifiers=("GA",))))
    assert finding.severity is Severity.INFO and "keep the signed ABN" in finding.detail
    assert finding.summary.startswith("Keep the signed ABN on file")
    [finding] = check(medicare(dn(CERVICALGIA, modifiers=("GZ",))))
    assert finding.severity is Severity.INFO and "cannot be billed" in finding.detail


@pytest.mark.usefixtures("no_list")
def test_a_diagnosis_outside_icd10cm_cannot_be_matched() -> None:
    [finding] = check(medicare(dn(Coding(SNOMED_SYSTEM, "279039007", "Low back pain"))))
    assert finding.severity is Severity.INFO and "ICD-10-CM" in finding.summary
    assert check(medicare(dn())) == []
