"""DN-UNIT-001: one unit per date."""

from __future__ import annotations

import datetime as dt

from needlecheck.plugin.context import PriorService
from needlecheck.plugin.findings import CodeChange
from needlecheck.plugin.rules.one_unit_per_date import check_one_unit_per_date as check
from tests.support.builders import (
    DOS,
    ERECTOR_SPINAE,
    INFRASPINATUS,
    LEFT,
    LEVATOR_SCAPULAE,
    RIGHT,
    TRAPEZIUS,
    context,
    line,
    site,
    two_muscles,
)


def test_quantity_above_one() -> None:
    [finding] = check(context(line("20560", *two_muscles(), units=2, sequence=1)))
    assert finding.rule_id == "DN-UNIT-001"
    assert "2 units" in finding.detail
    assert [source.source_id for source in finding.sources] == ["CS-09"]  # FE-06/CS-08 only for split sides


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


def test_two_lines_of_two_muscles_are_one_20561_line() -> None:
    first = line("20560", *two_muscles(), sequence=1)
    second = line("20560", site(LEVATOR_SCAPULAE, LEFT), site(LEVATOR_SCAPULAE, RIGHT), sequence=2)
    [finding] = check(context(first, second))
    assert finding.summary == "Bill one 20561 line for 2026-03-02: 20560 appears 2 times, 4 muscles in all"
    assert "4 muscles" in finding.detail and "20561" in finding.detail
    assert finding.fix == CodeChange("Claim/c1", "20560", "20561", 1, merged_items=(2,))
    assert finding.fix.proven and finding.fix.label == "Bill lines 1 and 2 as one 20561 line"


def test_a_muscle_on_both_lines_counts_once() -> None:
    first = line("20560", *two_muscles(), sequence=1)
    second = line("20560", site(TRAPEZIUS, LEFT), sequence=2)
    [finding] = check(context(first, second))
    assert finding.fix == CodeChange("Claim/c1", "20560", "20560", 1, merged_items=(2,))
    assert "one 20560 line" in finding.summary and "2 muscles in all" in finding.summary


def test_muscles_that_cannot_all_be_counted_get_no_change() -> None:
    first = line("20560", site(TRAPEZIUS, LEFT), sequence=1)
    second = line("20560", site(ERECTOR_SPINAE, LEFT), sequence=2)
    [finding] = check(context(first, second))
    assert finding.fix is None and "report it once" in finding.summary and "name every muscle" in finding.detail


def test_an_unsided_muscle_may_be_two() -> None:
    first = line("20560", site(TRAPEZIUS, LEFT), sequence=1)
    second = line("20560", site(LEVATOR_SCAPULAE), site(INFRASPINATUS, LEFT), sequence=2)
    [finding] = check(context(first, second))
    assert finding.fix is not None and finding.fix.to_code == "20561"  # three muscles at least
    unsure = line("20560", site(LEVATOR_SCAPULAE), sequence=2)
    [finding] = check(context(first, unsure))
    assert finding.fix is None  # levator scapulae on one side or both: 2 or 3 muscles


def test_an_earlier_procedure_that_day_leaves_the_code_open() -> None:
    first = line("20560", *two_muscles(), sequence=1)
    second = line("20560", site(LEVATOR_SCAPULAE, LEFT), sequence=2)
    [finding] = check(context(first, second, history=(PriorService("Procedure/p1", "20560", DOS),)))
    assert finding.fix is None and "3 times" in finding.summary


def test_orders_get_the_total_but_no_change() -> None:
    first = line("20560", *two_muscles())
    second = line("20560", site(LEVATOR_SCAPULAE, LEFT), site(LEVATOR_SCAPULAE, RIGHT))
    [finding] = check(context(first, second))
    assert finding.fix is None and "Bill one 20561 order" in finding.summary


def test_rt_and_lt_lines_of_20560_are_not_two_services_by_its_bilateral_indicator_0() -> None:
    # FE-06: 20560's MPFS bilateral surgery indicator is 0, so RT and LT lines do not double it.
    right = line("20560", site(TRAPEZIUS, RIGHT), sequence=1, modifiers=("RT",))
    left = line("20560", site(TRAPEZIUS, LEFT), sequence=2, modifiers=("LT",))
    [finding] = check(context(right, left))
    assert "RT and LT on separate lines do not make two services" in finding.detail
    assert "bilateral surgery indicator of 20560 is 0 (2025 fee schedule, FE-06" in finding.detail
    assert [source.source_id for source in finding.sources] == ["CS-09", "FE-06"]


def test_rt_and_lt_lines_without_an_indicator_row_cite_cs_08() -> None:
    old = dt.date(2024, 6, 3)
    right = line("20560", site(TRAPEZIUS, RIGHT), day=old, sequence=1, modifiers=("RT",))
    left = line("20560", site(TRAPEZIUS, LEFT), day=old, sequence=2, modifiers=("LT",))
    [finding] = check(context(right, left, today=old))
    assert "do not make two services" in finding.detail and "indicator" not in finding.detail
    assert [source.source_id for source in finding.sources] == ["CS-09", "CS-08"]


def test_repeated_lines_without_split_sides_say_nothing_about_sides() -> None:
    [finding] = check(context(line("20560", sequence=1), line("20560", sequence=2)))
    assert "RT and LT" not in finding.detail and [s.source_id for s in finding.sources] == ["CS-09"]
