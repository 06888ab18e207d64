"""DN-CODE-001: the code follows the muscle count."""

from __future__ import annotations

import datetime as dt

from needlecheck.plugin.findings import CodeChange, Severity
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

MIDLINE = "399488007"


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


GASTROCNEMIUS, SOLEUS, TIBIALIS_ANTERIOR = "181700004", "181702007", "181696007"  # partial (UBERON) rows


def test_a_count_resting_on_unverified_codes_asks_to_confirm_and_offers_no_change() -> None:
    # Left and right trapezius are verified; gastrocnemius 181700004 is only a UBERON cross-reference.
    [finding] = check(context(line("20560", *two_muscles(), site(GASTROCNEMIUS, LEFT), sequence=1)))
    assert finding.severity is Severity.INFO and finding.fix is None
    assert "181700004" in finding.detail and "20561" in finding.summary


def test_unverified_codes_alone_never_decide_a_change() -> None:
    sites = (site(GASTROCNEMIUS, LEFT), site(SOLEUS, LEFT), site(TIBIALIS_ANTERIOR, LEFT))
    [finding] = check(context(line("20560", *sites)))
    assert finding.severity is Severity.INFO and finding.fix is None


def test_three_verified_muscles_decide_20561_whatever_the_unverified_codes_name() -> None:
    [finding] = check(context(line("20560", *three_muscles(), site(SOLEUS, RIGHT), sequence=1)))
    assert finding.severity is Severity.WARNING
    assert finding.fix == CodeChange("Claim/c1", "20560", "20561", 1)


def test_unverified_codes_that_agree_with_the_code_give_no_card() -> None:
    assert check(context(line("20561", *two_muscles(), site(GASTROCNEMIUS, LEFT)))) == []


def test_midline_is_not_a_side_and_adds_no_muscle() -> None:
    # Trapezius with a midline qualifier beside left trapezius is still one muscle, not two.
    assert check(context(line("20560", site(TRAPEZIUS, MIDLINE), site(TRAPEZIUS, LEFT)))) == []
    [finding] = check(context(line("20561", site(TRAPEZIUS, MIDLINE), site(TRAPEZIUS, LEFT),
                                   site(LEVATOR_SCAPULAE, LEFT))))
    assert finding.fix is not None and finding.fix.to_code == "20560"
