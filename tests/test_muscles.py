"""Muscle counting: every laterality form, groups, unmapped codes, text-only sites and duplicates."""

from __future__ import annotations

import pytest

from needlecheck.mappings.muscles import Side
from needlecheck.plugin.muscles import SiteProblem, count_muscles, parse_expression, reduce_body_site
from tests.support.builders import (
    BACK_REGION,
    BOTH,
    ERECTOR_SPINAE,
    LEFT,
    LEVATOR_SCAPULAE,
    RIGHT,
    TRAPEZIUS,
    site,
)


def test_left_and_right_of_one_muscle_are_two_muscles() -> None:
    assert count_muscles([site(TRAPEZIUS, LEFT), site(TRAPEZIUS, RIGHT)]).count == 2


def test_several_points_in_one_muscle_count_once() -> None:
    counted = count_muscles([site(TRAPEZIUS, LEFT)] * 4)
    assert counted.count == 1
    assert counted.muscles == (("trapezius", Side.LEFT),)


def test_right_and_left_qualifier_counts_twice() -> None:
    assert count_muscles([site(TRAPEZIUS, BOTH)]).muscles == (("trapezius", Side.LEFT), ("trapezius", Side.RIGHT))


def test_structure_and_entire_concepts_of_one_muscle_are_one_muscle() -> None:
    # 31764008 "Structure of trapezius" and 181740005 (its "Entire" sibling) name the same muscle.
    assert count_muscles([site(TRAPEZIUS, LEFT), site("181740005", LEFT)]).count == 1


def test_part_of_a_muscle_counts_as_the_muscle() -> None:
    # 2192001 clavicular part of pectoralis major.
    assert count_muscles([site("60005003", LEFT), site("2192001", LEFT)]).count == 1


@pytest.mark.parametrize(("code", "muscle", "side"), [
    ("16217701000119102", "deltoid", Side.LEFT),
    ("16217661000119109", "deltoid", Side.RIGHT),
    ("1217007000", "vastus lateralis", Side.LEFT),
    ("1217006009", "vastus lateralis", Side.RIGHT),
])
def test_precoordinated_side(code: str, muscle: str, side: Side) -> None:
    treated = reduce_body_site(site(code))
    assert (treated.muscle, treated.side, treated.problem) == (muscle, side, None)


@pytest.mark.parametrize(("expression", "side"), [
    ("31764008:272741003=7771000", Side.LEFT),
    ("31764008:272741003=24028007", Side.RIGHT),
    ("31764008 |Trapezius| : { 272741003 |Laterality| = 51440002 |Right and left| }", Side.BOTH),
    ("31764008:363698007=123037004", Side.UNSPECIFIED),
])
def test_postcoordinated_expression(expression: str, side: Side) -> None:
    treated = reduce_body_site(site(expression))
    assert (treated.muscle, treated.side) == ("trapezius", side)


def test_expression_parser_keeps_the_focus_concept() -> None:
    assert parse_expression("=== 31764008 |Trapezius| : 272741003 = 7771000") == ("31764008", "7771000")


@pytest.mark.parametrize(("qualifier", "side"), [
    (LEFT, Side.LEFT), (RIGHT, Side.RIGHT), (BOTH, Side.BOTH),
    ("419161000", Side.LEFT), ("419465000", Side.RIGHT), ("66459002", Side.UNSPECIFIED),
])
def test_laterality_qualifier_beside_the_code(qualifier: str, side: Side) -> None:
    assert reduce_body_site(site(LEVATOR_SCAPULAE, qualifier)).side == side


def test_qualifiers_for_left_and_right_make_both() -> None:
    assert reduce_body_site(site(TRAPEZIUS, LEFT, RIGHT)).side == Side.BOTH


def test_group_concepts_are_never_counted() -> None:
    counted = count_muscles([site(ERECTOR_SPINAE, LEFT), site("128511007", RIGHT), site(TRAPEZIUS, LEFT)])
    assert counted.count == 1
    assert [s.problem for s in counted.uncountable] == [SiteProblem.GROUP, SiteProblem.GROUP]
    assert not counted.established


def test_unmapped_code_and_text_only_site_are_never_counted() -> None:
    counted = count_muscles([site(BACK_REGION), site(text="paraspinals")])
    assert counted.count == 0
    assert [(s.problem, s.body_site.label) for s in counted.uncountable] == [
        (SiteProblem.UNMAPPED, f"{BACK_REGION} (http://snomed.info/sct)"),
        (SiteProblem.TEXT_ONLY, "paraspinals"),
    ]


def test_a_code_in_another_system_is_not_a_muscle() -> None:
    from needlecheck.plugin.terms import BodySite, Coding

    counted = count_muscles([BodySite((Coding("http://example.org/local", TRAPEZIUS),))])
    assert counted.count == 0
    assert counted.uncountable[0].problem is SiteProblem.UNMAPPED


def test_an_unsided_site_adds_nothing_next_to_the_same_muscle_with_a_side() -> None:
    counted = count_muscles([site(TRAPEZIUS), site(TRAPEZIUS, LEFT)])
    assert counted.muscles == (("trapezius", Side.LEFT),)
    assert counted.unsided == ()


def test_a_muscle_without_any_side_counts_once_and_is_reported_unsided() -> None:
    counted = count_muscles([site(TRAPEZIUS), site(TRAPEZIUS), site(LEVATOR_SCAPULAE, RIGHT)])
    assert counted.count == 2
    assert [s.muscle for s in counted.unsided] == ["trapezius"]
