"""DN-MCR-004: a PT's or chiropractor's dry needling is a statutory exclusion under Medicare."""

from __future__ import annotations

import datetime as dt

import pytest

from needlecheck.plugin.context import ServiceLine
from needlecheck.plugin.findings import Severity
from needlecheck.plugin.rules.medicare_statutory_exclusion import check_medicare_statutory_exclusion as check
from tests.support.builders import line, two_muscles
from tests.support.medicare import (
    ACUPUNCTURIST,
    CHIROPRACTOR,
    COMMERCIAL,
    LOW_BACK_PAIN,
    MEDICARE_ADVANTAGE,
    PHYSICAL_THERAPIST,
    PHYSICIAN,
    by,
    medicare,
)


def dn(*performer: str, modifiers: tuple[str, ...] = (), day: dt.date = dt.date(2026, 3, 2)) -> ServiceLine:
    return by(line("20560", *two_muscles(), sequence=1, day=day, indications=(LOW_BACK_PAIN,), modifiers=modifiers),
              *performer)


@pytest.mark.parametrize("performer", [PHYSICAL_THERAPIST, CHIROPRACTOR, "225200000X"])
def test_no_gy_or_gx_is_reported(performer: str) -> None:
    [finding] = check(medicare(dn(performer)))
    assert finding.rule_id == "DN-MCR-004" and finding.severity is Severity.WARNING
    assert "GY or GX" in finding.summary and "**GY**" in finding.detail and "claim line 1" in finding.detail.lower()
    assert len(finding.summary) < 140


@pytest.mark.parametrize("modifiers", [("GY",), ("GX",), ("GX", "GY"), ("GP", "gy")])
def test_gy_or_gx_is_right(modifiers: tuple[str, ...]) -> None:
    assert check(medicare(dn(PHYSICAL_THERAPIST, modifiers=modifiers))) == []


@pytest.mark.parametrize(("modifiers", "named"), [(("GA",), "GA"), (("GZ",), "GZ"), (("GA", "GY"), "GA")])
def test_ga_or_gz_is_wrong_for_a_statutory_exclusion(modifiers: tuple[str, ...], named: str) -> None:
    [finding] = check(medicare(dn(PHYSICAL_THERAPIST, modifiers=modifiers)))
    assert finding.summary.startswith(f"Replace {named} with GY or GX") and "not-reasonable" in finding.detail


def test_eligible_unknown_or_mixed_performers_are_not_reported() -> None:
    assert check(medicare(dn(PHYSICIAN))) == []
    assert check(medicare(dn())) == []
    assert check(medicare(dn(PHYSICAL_THERAPIST, ACUPUNCTURIST))) == []


def test_applies_on_each_side_of_2020_01_21() -> None:
    for day in (dt.date(2020, 1, 20), dt.date(2020, 1, 21)):
        assert len(check(medicare(dn(PHYSICAL_THERAPIST, day=day)))) == 1


def test_medicare_advantage_is_told_the_plan_follows_the_ncd() -> None:
    [finding] = check(medicare(dn(PHYSICAL_THERAPIST, modifiers=("GY",)), coverage=MEDICARE_ADVANTAGE))
    assert finding.severity is Severity.WARNING and "plan" in finding.summary
    assert "Medicare Advantage" in finding.detail


def test_other_payers_are_not_checked() -> None:
    assert check(medicare(dn(PHYSICAL_THERAPIST), coverage=COMMERCIAL)) == []
