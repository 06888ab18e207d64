"""DN-CODE-001: the code follows the muscle count."""

from __future__ import annotations

import datetime as dt

from needlecheck.plugin.findings import CodeChange
from needlecheck.plugin.rules.code_matches_muscle_count import check_code_matches_muscle_count as check
from tests.support.builders import (
    ERECTOR_SPINAE,
    LEFT,
    LEVATOR_SCAPULAE,
    RIGHT,
    TRAPEZIUS,
    context,
    line,
    site,
    three_muscles,
    two_muscles,
)


def test_20560_for_three_muscles_suggests_20561() -> None:
    [finding] = check(context(line("20560", *three_muscles(), sequence=1)))
    assert finding.rule_id == "DN-CODE-001"
    assert finding.fix == CodeChange("Claim/c1", "20560", "20561", 1)
    assert "3 muscles" in finding.summary and "claim line 1" in finding.detail.lower()


def test_20561_for_two_muscles_suggests_20560() -> None:
    [finding] = check(context(line("20561", *two_muscles())))
    assert finding.fix == CodeChange("ServiceRequest/sr-1", "20561", "20560", None)


def test_matching_codes_are_clean() -> None:
    assert check(context(line("20560", *two_muscles()), line("20561", *three_muscles(), sequence=2))) == []


def test_needles_do_not_count_only_muscles() -> None:
    # Five points in the left trapezius are one muscle: 20560, not 20561.
    [finding] = check(context(line("20561", *[site(TRAPEZIUS, LEFT)] * 5)))
    assert finding.fix is not None and finding.fix.to_code == "20560"


def test_right_and_left_of_one_muscle_make_two() -> None:
    assert check(context(line("20560", site(TRAPEZIUS, LEFT, RIGHT)))) == []
    [finding] = check(context(line("20561", site(TRAPEZIUS, LEFT, RIGHT))))
    assert finding.fix is not None and finding.fix.to_code == "20560"


def test_uncountable_sites_give_no_code_suggestion_below_three_named_muscles() -> None:
    assert check(context(line("20561", site(TRAPEZIUS, LEFT), site(ERECTOR_SPINAE)))) == []


def test_three_named_muscles_are_enough_even_beside_a_group() -> None:
    [finding] = check(context(line("20560", *three_muscles(), site(ERECTOR_SPINAE))))
    assert finding.fix is not None and finding.fix.to_code == "20561"


def test_no_suggestion_before_the_codes_existed() -> None:
    assert check(context(line("20560", *three_muscles(), day=dt.date(2019, 12, 31)))) == []
    assert check(context(line("20560", *three_muscles(), day=dt.date(2020, 1, 1))))


def test_lines_without_body_sites_are_left_to_the_documentation_rule() -> None:
    assert check(context(line("20561"))) == []
    assert check(context(line("20560", site(LEVATOR_SCAPULAE, RIGHT)))) == []
