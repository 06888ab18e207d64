"""DN-MCR-006: PAs, NPs, CNSs and acupuncturists need the NCD's credentials and supervision."""

from __future__ import annotations

import datetime as dt

import pytest

from needlecheck.plugin.context import ServiceLine
from needlecheck.plugin.findings import Severity
from needlecheck.plugin.rules.medicare_practitioner_credentials import check_medicare_practitioner_credentials as check
from tests.support.builders import line, two_muscles
from tests.support.medicare import (
    ACUPUNCTURIST,
    COMMERCIAL,
    LOW_BACK_PAIN,
    MEDICARE_ADVANTAGE,
    NURSE_PRACTITIONER,
    PHYSICAL_THERAPIST,
    PHYSICIAN,
    PHYSICIAN_ASSISTANT,
    by,
    medicare,
)


def dn(*performer: str, day: dt.date = dt.date(2026, 3, 2)) -> ServiceLine:
    return by(line("20560", *two_muscles(), sequence=1, day=day, indications=(LOW_BACK_PAIN,)), *performer)


@pytest.mark.parametrize(("performer", "named"), [
    (NURSE_PRACTITIONER, "nurse practitioner"), (PHYSICIAN_ASSISTANT, "physician assistant"),
    ("364S00000X", "clinical nurse specialist"),
])
def test_pa_np_cns_without_an_acupuncture_qualification(performer: str, named: str) -> None:
    [finding] = check(medicare(dn(performer)))
    assert finding.rule_id == "DN-MCR-006" and finding.severity is Severity.INFO
    assert named in finding.summary and "ACAOM" in finding.detail and len(finding.summary) < 140


def test_an_acupuncturist_qualification_shows_the_credentials() -> None:
    assert check(medicare(dn(NURSE_PRACTITIONER, ACUPUNCTURIST))) == []


def test_an_acupuncturist_alone_is_auxiliary_personnel() -> None:
    [finding] = check(medicare(dn(ACUPUNCTURIST), coverage=MEDICARE_ADVANTAGE))
    assert "supervision" in finding.summary and "410.26" in finding.detail


def test_physicians_unknown_performers_and_pts_are_not_reported_here() -> None:
    assert check(medicare(dn(PHYSICIAN))) == []
    assert check(medicare(dn(PHYSICIAN, NURSE_PRACTITIONER))) == []
    assert check(medicare(dn())) == []
    assert check(medicare(dn(PHYSICAL_THERAPIST))) == []


def test_on_each_side_of_the_ncd_start_and_for_other_payers() -> None:
    assert check(medicare(dn(NURSE_PRACTITIONER, day=dt.date(2020, 1, 20)))) == []
    assert len(check(medicare(dn(NURSE_PRACTITIONER, day=dt.date(2020, 1, 21))))) == 1
    assert check(medicare(dn(NURSE_PRACTITIONER), coverage=COMMERCIAL)) == []
