"""DN-MCR-002: the low back pain has lasted 12 weeks by the date of service."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest

from needlecheck.mappings.datasets import using_datasets
from needlecheck.plugin.context import ConditionFacts, ServiceLine
from needlecheck.plugin.findings import Severity
from needlecheck.plugin.rules.medicare_clbp_duration import check_medicare_clbp_duration as check
from needlecheck.plugin.terms import Coding
from tests.support.builders import DOS, MYALGIA, line, two_muscles
from tests.support.medicare import (
    CERVICALGIA,
    COMMERCIAL,
    LOW_BACK_PAIN,
    MEDICARE_ADVANTAGE,
    PHYSICAL_THERAPIST,
    PHYSICIAN,
    TEST_DATASETS,
    by,
    condition,
    icd,
    medicare,
)

NCD_START = dt.date(2020, 1, 21)


@pytest.fixture(autouse=True)
def no_list(tmp_path: Path) -> Iterator[None]:
    with using_datasets(tmp_path):
        yield


def dn(*indications: Coding, day: dt.date = DOS, performer: str = PHYSICIAN) -> ServiceLine:
    return by(line("20560", *two_muscles(), sequence=1, day=day, indications=indications), performer)


def lbp_since(days_before: int, day: dt.date = DOS, code: str = "M54.50") -> tuple[ConditionFacts, ...]:
    return (condition(code, day - dt.timedelta(days=days_before)),)


def test_83_days_is_not_yet_chronic() -> None:
    [finding] = check(medicare(dn(LOW_BACK_PAIN), conditions=lbp_since(83)))
    assert finding.rule_id == "DN-MCR-002" and finding.severity is Severity.WARNING
    assert "83 days" in finding.summary and "claim line 1" in finding.detail.lower()
    assert len(finding.summary) < 140


def test_84_days_is_12_weeks() -> None:
    assert check(medicare(dn(LOW_BACK_PAIN), conditions=lbp_since(84))) == []


def test_the_earliest_onset_of_the_matching_conditions_counts() -> None:
    conditions = (*lbp_since(30), *lbp_since(400, code="M54.5"))
    assert check(medicare(dn(LOW_BACK_PAIN), conditions=conditions)) == []


def test_a_condition_of_another_diagnosis_does_not_count() -> None:
    [finding] = check(medicare(dn(LOW_BACK_PAIN), conditions=(condition("M54.2", DOS - dt.timedelta(days=400)),)))
    assert finding.severity is Severity.INFO and "no Condition in the record" in finding.detail


def test_missing_onset_is_information() -> None:
    [finding] = check(medicare(dn(LOW_BACK_PAIN), conditions=(condition("M54.50", None),)))
    assert finding.severity is Severity.INFO and "has no onset" in finding.detail and "DOC-05" in finding.detail


def test_medicare_advantage_follows_the_ncd_too() -> None:
    [finding] = check(medicare(dn(LOW_BACK_PAIN), coverage=MEDICARE_ADVANTAGE, conditions=lbp_since(10)))
    assert finding.severity is Severity.WARNING


def test_on_each_side_of_the_ncd_start() -> None:
    before = NCD_START - dt.timedelta(days=1)
    assert check(medicare(dn(LOW_BACK_PAIN, day=before), conditions=lbp_since(10, before))) == []
    [finding] = check(medicare(dn(LOW_BACK_PAIN, day=NCD_START), conditions=lbp_since(10, NCD_START)))
    assert finding.severity is Severity.WARNING


def test_only_low_back_diagnoses_are_measured() -> None:
    assert check(medicare(dn(CERVICALGIA), conditions=(condition("M54.2", DOS),))) == []


def test_with_the_list_installed_only_listed_codes_are_measured() -> None:
    with using_datasets(TEST_DATASETS):
        assert check(medicare(dn(icd("M51.26")), conditions=(condition("M51.26", DOS),))) == []
        [finding] = check(medicare(dn(icd("M54.59")), conditions=lbp_since(5, code="M54.59")))
    assert finding.severity is Severity.WARNING


def test_not_checked_for_other_payers_or_for_a_physical_therapist_under_ffs() -> None:
    assert check(medicare(dn(LOW_BACK_PAIN), coverage=COMMERCIAL, conditions=lbp_since(10))) == []
    assert check(medicare(dn(LOW_BACK_PAIN, performer=PHYSICAL_THERAPIST), conditions=lbp_since(10))) == []


def test_an_onset_after_the_date_of_service_prints_no_negative_duration() -> None:
    # Issue 9, finding 9: "began -30 days before" is not something a coder can act on.
    later = condition("M54.50", DOS + dt.timedelta(days=30))
    [finding] = check(medicare(dn(LOW_BACK_PAIN), conditions=(later,)))
    assert "after the date of service" in finding.summary
    assert "-30" not in finding.summary and "-30" not in finding.detail


def test_myalgia_is_never_measured_nor_called_low_back_pain() -> None:
    assert check(medicare(dn(MYALGIA), conditions=(condition("M79.18", DOS - dt.timedelta(days=10)),))) == []
