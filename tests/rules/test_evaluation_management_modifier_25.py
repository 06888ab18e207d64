"""DN-PAIR-003: same-day office E/M needs modifier 25."""

from __future__ import annotations

import datetime as dt

import pytest

from needlecheck.plugin.context import PriorService
from needlecheck.plugin.rules.evaluation_management_modifier_25 import check_evaluation_management_modifier_25 as check
from tests.support.builders import DOS, context, line, two_muscles


def test_e_m_without_25_on_the_date_of_dry_needling() -> None:
    [finding] = check(context(line("99213", sequence=1), line("20560", *two_muscles(), sequence=2)))
    assert finding.rule_id == "DN-PAIR-003" and finding.line_key == "Claim/c1#item-2"
    assert "claim line 1 (99213)" in finding.detail and "modifier 25" in finding.summary


def test_e_m_with_25_is_fine() -> None:
    assert check(context(line("99213", sequence=1, modifiers=("25",)),
                         line("20560", *two_muscles(), sequence=2))) == []


def test_modifier_25_on_the_dry_needling_line_does_not_count() -> None:
    assert check(context(line("99214", sequence=1), line("20560", *two_muscles(), sequence=2, modifiers=("25",))))


def test_e_m_on_another_date_or_a_non_office_code_is_fine() -> None:
    later = DOS + dt.timedelta(days=1)
    assert check(context(line("99213", day=later, sequence=1), line("20560", *two_muscles(), sequence=2))) == []
    assert check(context(line("99201", sequence=1), line("20560", *two_muscles(), sequence=2))) == []


def test_earlier_e_m_procedures_are_not_compared() -> None:
    history = (PriorService("Procedure/em-1", "99213", DOS),)
    assert check(context(line("20560", *two_muscles(), sequence=1), history=history)) == []


@pytest.mark.parametrize("code", ["99242", "99243", "99244", "99245", "99252", "99253", "99254", "99255"])
def test_consultations_need_modifier_25_too(code: str) -> None:
    [finding] = check(context(line(code, sequence=1), line("20560", *two_muscles(), sequence=2)))
    assert f"claim line 1 ({code})" in finding.detail
    assert check(context(line(code, sequence=1, modifiers=("25",)), line("20560", *two_muscles(), sequence=2))) == []


def test_the_consultation_codes_deleted_in_2023_count_before_their_deletion() -> None:
    old = dt.date(2022, 6, 1)
    assert check(context(line("99241", day=old, sequence=1), line("20560", *two_muscles(), day=old, sequence=2),
                         today=old))


def test_modifier_25_on_the_dry_needling_line_is_named_as_misplaced() -> None:
    [finding] = check(context(line("99214", sequence=1), line("20560", *two_muscles(), sequence=2,
                                                               modifiers=("25",))))
    assert finding.summary.startswith("Move modifier 25 from 20560 to the E/M line")
    assert "instead" in finding.detail and "move it to claim line 1 (99214)" in finding.detail
