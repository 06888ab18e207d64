"""DN-CODE-005: dry needling billed under a substitute code from 2020-01-01."""

from __future__ import annotations

import datetime as dt

import pytest

from needlecheck.plugin.rules.dry_needling_billed_under_other_code import (
    check_dry_needling_billed_under_other_code as check,
)
from tests.support.builders import context, line, site, three_muscles, two_muscles

CODES_EXIST = dt.date(2020, 1, 1)


@pytest.mark.parametrize("code", ["20999", "97140", "20552", "20553", "97810", "97814", "20550", "20551"])
def test_substitute_codes_described_as_dry_needling(code: str) -> None:
    [finding] = check(context(line(code, sequence=1, described_as=("Trigger point dry needling",))))
    assert finding.rule_id == "DN-CODE-005" and code in finding.summary


@pytest.mark.parametrize("words", ["Needle insertion(s) without injection(s)", "intramuscular manual therapy",
                                   "DRY-NEEDLING, left trapezius", "Intramuscular needling"])
def test_the_words_that_say_dry_needling(words: str) -> None:
    assert check(context(line("97140", sequence=1, described_as=(words,))))


def test_the_muscle_count_decides_the_suggested_code() -> None:
    [two] = check(context(line("97140", *two_muscles(), sequence=1, described_as=("dry needling",))))
    assert two.fix is not None and two.fix.to_code == "20560" and two.fix.item_sequence == 1
    [three] = check(context(line("20999", *three_muscles(), sequence=1, described_as=("dry needling",))))
    assert three.fix is not None and three.fix.to_code == "20561"
    [unknown] = check(context(line("20999", sequence=1, described_as=("dry needling",))))
    assert unknown.fix is None


def test_other_words_or_an_injectate_are_fine() -> None:
    assert check(context(line("97140", sequence=1, described_as=("Manual therapy, soft tissue mobilization",)))) == []
    assert check(context(line("20552", sequence=1, described_as=("dry needling",), substances=("lidocaine",)))) == []
    assert check(context(line("97140", sequence=1, described_as=("needling of the hamstring, not dry",)))) == []


def test_before_2020_the_old_codes_were_the_route() -> None:
    day_before = CODES_EXIST - dt.timedelta(days=1)
    assert check(context(line("20999", day=day_before, sequence=1, described_as=("dry needling",)))) == []
    assert check(context(line("20999", day=CODES_EXIST, sequence=1, described_as=("dry needling",))))


def test_unverified_muscle_codes_do_not_decide_the_suggested_code() -> None:
    # Soleus 181702007 is a partial (UBERON) row: the card names both codes instead of choosing one.
    [finding] = check(context(line("97140", *two_muscles(), site("181702007", "7771000"), sequence=1,
                                   described_as=("dry needling",))))
    assert finding.fix is None
