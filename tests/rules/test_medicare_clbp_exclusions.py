"""DN-MCR-003: pregnancy, surgery and systemic-cause diagnoses are flagged for review."""

from __future__ import annotations

import datetime as dt

import pytest

from needlecheck.plugin.context import ServiceLine
from needlecheck.plugin.findings import Severity
from needlecheck.plugin.rules.medicare_clbp_exclusions import check_medicare_clbp_exclusions as check
from needlecheck.plugin.terms import Coding
from tests.support.builders import DOS, line, two_muscles
from tests.support.medicare import (
    COMMERCIAL,
    LOW_BACK_PAIN,
    MEDICARE_ADVANTAGE,
    PHYSICAL_THERAPIST,
    PHYSICIAN,
    by,
    condition,
    icd,
    medicare,
)

NCD_START = dt.date(2020, 1, 21)


def dn(*indications: Coding, day: dt.date = DOS, performer: str = PHYSICIAN) -> ServiceLine:
    return by(line("20561", *two_muscles(), sequence=2, day=day, indications=indications), performer)


@pytest.mark.parametrize(("code", "category"), [
    ("Z33.1", "pregnancy"), ("O26.892", "pregnancy"), ("C79.51", "neoplasm"), ("M46.26", "infection"),
    ("M45.6", "inflammatory spine"), ("M96.1", "post surgical"),
])
def test_an_active_condition_in_an_excluded_range_is_flagged(code: str, category: str) -> None:
    [finding] = check(medicare(dn(LOW_BACK_PAIN), conditions=(condition(code, DOS),)))
    assert finding.rule_id == "DN-MCR-003" and finding.severity is Severity.INFO
    assert category in finding.summary and code in finding.detail and "IC-04" in finding.detail
    assert "claim line 2" in finding.detail.lower() and len(finding.summary) < 140


def test_a_line_diagnosis_in_an_excluded_range_is_flagged() -> None:
    [finding] = check(medicare(dn(LOW_BACK_PAIN, icd("M96.1"))))
    assert "diagnosis of the line" in finding.detail


def test_resolved_conditions_and_neighbouring_codes_are_not_flagged() -> None:
    assert check(medicare(dn(LOW_BACK_PAIN), conditions=(condition("Z33.1", DOS, status="resolved"),))) == []
    assert check(medicare(dn(LOW_BACK_PAIN), conditions=(condition("D17.1", DOS), condition("M47.816", DOS)))) == []


def test_a_condition_without_status_counts_as_current() -> None:
    [finding] = check(medicare(dn(LOW_BACK_PAIN), conditions=(condition("Z98.1", None, status=None),)))
    assert "post surgical" in finding.summary


def test_several_categories_make_one_finding() -> None:
    [finding] = check(medicare(dn(LOW_BACK_PAIN, icd("C79.51")), conditions=(condition("Z34.02", DOS),)))
    assert "neoplasm and pregnancy" in finding.summary


def test_on_each_side_of_the_ncd_start_and_for_medicare_advantage() -> None:
    conditions = (condition("Z33.1", NCD_START),)
    assert check(medicare(dn(LOW_BACK_PAIN, day=NCD_START - dt.timedelta(days=1)), conditions=conditions)) == []
    assert len(check(medicare(dn(LOW_BACK_PAIN, day=NCD_START), conditions=conditions))) == 1
    assert len(check(medicare(dn(LOW_BACK_PAIN), coverage=MEDICARE_ADVANTAGE, conditions=conditions))) == 1


def test_not_checked_for_other_payers_or_for_a_physical_therapist_under_ffs() -> None:
    conditions = (condition("Z33.1", DOS),)
    assert check(medicare(dn(LOW_BACK_PAIN), coverage=COMMERCIAL, conditions=conditions)) == []
    assert check(medicare(dn(LOW_BACK_PAIN, performer=PHYSICAL_THERAPIST), conditions=conditions)) == []
