"""DN-DOC-002: paired muscles carry a side."""

from __future__ import annotations

from needlecheck.plugin.rules.paired_muscle_has_side import check_paired_muscle_has_side as check
from tests.support.builders import LEFT, LEVATOR_SCAPULAE, RIGHT, TRAPEZIUS, context, line, site


def test_muscles_without_side_are_named() -> None:
    [finding] = check(context(line("20560", site(TRAPEZIUS), site(LEVATOR_SCAPULAE))))
    assert finding.rule_id == "DN-DOC-002"
    assert "trapezius" in finding.summary and "levator scapulae" in finding.summary


def test_muscles_with_a_side_are_fine() -> None:
    assert check(context(line("20560", site(TRAPEZIUS, LEFT), site(LEVATOR_SCAPULAE, RIGHT)))) == []
    assert check(context(line("20560", site("31764008:272741003=7771000")))) == []


def test_a_midline_qualifier_is_not_a_side() -> None:
    [finding] = check(context(line("20560", site(TRAPEZIUS, "399488007"))))
    assert "trapezius" in finding.summary
    [finding] = check(context(line("20560", site("31764008:272741003=399488007"))))
    assert "trapezius" in finding.summary
