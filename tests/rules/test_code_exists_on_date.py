"""DN-CODE-004: 20560/20561 from 2020-01-01."""

from __future__ import annotations

import datetime as dt

from needlecheck.plugin.rules.code_exists_on_date import check_code_exists_on_date as check
from tests.support.builders import context, line, two_muscles


def test_the_day_before_the_codes_existed() -> None:
    [finding] = check(context(line("20560", *two_muscles(), day=dt.date(2019, 12, 31), sequence=1)))
    assert finding.rule_id == "DN-CODE-004"
    assert finding.fix is not None and finding.fix.to_code == "20999"
    assert "2019-12-31" in finding.summary


def test_the_day_the_codes_came_into_force() -> None:
    assert check(context(line("20560", *two_muscles(), day=dt.date(2020, 1, 1), sequence=1))) == []


def test_an_order_without_a_date_is_for_the_day_it_is_signed() -> None:
    assert check(context(line("20561", day=None), today=dt.date(2026, 3, 1))) == []
    assert check(context(line("20561", day=None), today=dt.date(2019, 6, 1)))
