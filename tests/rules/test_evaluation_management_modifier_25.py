"""DN-PAIR-003: same-day office E/M needs modifier 25."""

from __future__ import annotations

import datetime as dt

import pytest

from needlecheck.plugin.context import PriorService
from needlecheck.plugin.rules.evaluation_management_modifier_25 import check_evaluation_management_modifier_25 as check
from tests.support.builders import DOS, context, line, three_muscles, two_muscles


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


def test_the_card_cites_20560s_global_period_xxx() -> None:
    # CS-11 as updated by FE-06: global XXX, so the ordinary modifier-25 rule decides (a sourced row now).
    [finding] = check(context(line("99213", sequence=1), line("20560", *two_muscles(), sequence=2)))
    assert "20560's MPFS global period is XXX (2025 fee schedule, FE-06" in finding.detail
    assert "ordinary modifier-25 rule" in finding.detail
    assert [source.source_id for source in finding.sources] == ["NC-04", "EM-CONSULTS-2023", "FE-06"]


def test_no_global_period_is_claimed_where_no_indicator_row_applies() -> None:
    [for_20561] = check(context(line("99213", sequence=1), line("20561", *three_muscles(), sequence=2)))
    old = dt.date(2024, 6, 3)
    [before_2025] = check(context(line("99213", day=old, sequence=1),
                                  line("20560", *two_muscles(), day=old, sequence=2), today=old))
    for finding in (for_20561, before_2025):
        assert "global period" not in finding.detail
        assert [source.source_id for source in finding.sources] == ["NC-04", "EM-CONSULTS-2023"]
