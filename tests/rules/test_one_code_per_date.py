"""DN-CODE-002: never 20560 and 20561 on one date."""

from __future__ import annotations

import datetime as dt

from needlecheck.plugin.context import PriorService
from needlecheck.plugin.findings import CodeChange
from needlecheck.plugin.rules.one_code_per_date import check_one_code_per_date as check
from tests.support.builders import DOS, context, line, three_muscles, two_muscles


def test_two_lines_with_both_codes_on_one_date() -> None:
    [finding] = check(context(line("20560", *two_muscles(), sequence=1), line("20561", *three_muscles(), sequence=2)))
    assert finding.rule_id == "DN-CODE-002"
    assert "claim line 1" in finding.detail.lower() and "claim line 2" in finding.detail.lower()


def test_both_codes_on_different_dates_are_fine() -> None:
    later = DOS + dt.timedelta(days=1)
    assert check(context(line("20560", sequence=1), line("20561", day=later, sequence=2))) == []


def test_an_earlier_procedure_with_the_other_code_on_the_same_date() -> None:
    history = (PriorService("Procedure/p9", "20561", DOS),)
    [finding] = check(context(line("20560", *two_muscles(), sequence=1), history=history))
    assert "Procedure/p9" in finding.detail


def test_history_on_another_date_or_with_another_code_is_fine() -> None:
    history = (PriorService("Procedure/p9", "20561", DOS - dt.timedelta(days=7)),
               PriorService("Procedure/p8", "97810", DOS))
    assert check(context(line("20560", sequence=1), history=history)) == []


def test_both_codes_on_one_date_add_up_to_one_line() -> None:
    # two_muscles() is a subset of three_muscles(): the session treated 3 muscles, not 5.
    [finding] = check(context(line("20560", *two_muscles(), sequence=1), line("20561", *three_muscles(), sequence=2)))
    assert finding.summary == "Bill one 20561 line for 2026-03-02: 20560 and 20561 both there, 3 muscles in all"
    assert finding.fix == CodeChange("Claim/c1", "20560", "20561", 1, merged_items=(2,))


def test_the_total_is_not_offered_when_an_earlier_procedure_has_muscles_we_cannot_see() -> None:
    history = (PriorService("Procedure/p9", "20561", DOS),)
    [finding] = check(context(line("20560", *two_muscles(), sequence=1), history=history))
    assert finding.fix is None
