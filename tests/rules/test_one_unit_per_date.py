"""DN-UNIT-001: one unit per date."""

from __future__ import annotations

import datetime as dt

from needlecheck.plugin.context import PriorService
from needlecheck.plugin.rules.one_unit_per_date import check_one_unit_per_date as check
from tests.support.builders import DOS, context, line, two_muscles


def test_quantity_above_one() -> None:
    [finding] = check(context(line("20560", *two_muscles(), units=2, sequence=1)))
    assert finding.rule_id == "DN-UNIT-001"
    assert "2 units" in finding.detail


def test_quantity_one_is_fine() -> None:
    assert check(context(line("20560", *two_muscles(), units=1, sequence=1))) == []


def test_same_code_on_two_lines_of_one_date() -> None:
    [finding] = check(context(line("20560", sequence=1), line("20560", sequence=2)))
    assert "claim line 1" in finding.detail.lower() and "claim line 2" in finding.detail.lower()


def test_same_code_on_two_dates_is_fine() -> None:
    assert check(context(line("20560", sequence=1), line("20560", day=DOS + dt.timedelta(days=2), sequence=2))) == []


def test_same_code_already_recorded_that_day() -> None:
    [finding] = check(context(line("20560", sequence=1), history=(PriorService("Procedure/p1", "20560", DOS),)))
    assert "Procedure/p1" in finding.detail
