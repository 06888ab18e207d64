"""DN-PAIR-005: manipulation with dry needling on one date is a low-confidence review flag."""

from __future__ import annotations

import datetime as dt

import pytest

from needlecheck.plugin.findings import Severity
from needlecheck.plugin.rules.manipulation_same_date import check_manipulation_same_date as check
from tests.support.builders import DOS, context, line, two_muscles


@pytest.mark.parametrize("code", ["98928", "98929", "98940", "98941"])
def test_manipulation_on_the_same_date_is_information(code: str) -> None:
    [finding] = check(context(line("20560", *two_muscles(), sequence=1), line(code, sequence=2)))
    assert finding.rule_id == "DN-PAIR-005" and finding.severity is Severity.INFO and finding.fix is None
    assert code in finding.detail and "confidence low" in finding.detail
    assert [source.source_id for source in finding.sources] == ["NC-07"]


@pytest.mark.parametrize("code", ["98925", "98942", "98943"])
def test_codes_the_source_does_not_name_are_not_flagged(code: str) -> None:
    assert check(context(line("20560", *two_muscles(), sequence=1), line(code, sequence=2))) == []


def test_manipulation_on_another_date_is_not_flagged() -> None:
    later = DOS + dt.timedelta(days=1)
    assert check(context(line("20561", *two_muscles(), sequence=1), line("98940", day=later, sequence=2))) == []
