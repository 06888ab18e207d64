"""DN-MOD-001: no modifier 50 on 20560/20561."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import pytest

from needlecheck.mappings.mpfs_indicators import mpfs_indicators_for
from needlecheck.plugin.rules import bilateral_modifier
from needlecheck.plugin.rules.bilateral_modifier import check_bilateral_modifier as check
from tests.support.builders import DOS, context, line, three_muscles, two_muscles


def test_modifier_50_on_dry_needling() -> None:
    [finding] = check(context(line("20560", *two_muscles(), sequence=1, modifiers=("50",))))
    assert finding.rule_id == "DN-MOD-001" and "modifier 50" in finding.summary


def test_rt_and_lt_are_information_only() -> None:
    assert check(context(line("20560", *two_muscles(), sequence=1, modifiers=("RT", "LT")))) == []


def test_modifier_50_on_another_code_is_not_this_rule() -> None:
    assert check(context(line("20552", *two_muscles(), sequence=1, modifiers=("50",)))) == []


def test_20560_cites_its_mpfs_bilateral_indicator_0() -> None:
    # FE-06: from the 2025 fee schedule 20560's bilateral surgery indicator is 0 (a sourced row, not an assumption).
    [finding] = check(context(line("20560", *two_muscles(), sequence=1, modifiers=("50",))))
    assert "bilateral surgery indicator is **0**" in finding.detail and "2025 fee schedule" in finding.detail
    assert "RT and LT on two lines" in finding.detail
    assert [source.source_id for source in finding.sources] == ["FE-06", "CS-08"]


def test_20561_and_dates_before_2025_say_the_indicator_is_not_recorded() -> None:
    [later] = check(context(line("20561", *three_muscles(), sequence=1, modifiers=("50",))))
    old = dt.date(2024, 6, 3)
    [earlier] = check(context(line("20560", *two_muscles(), day=old, sequence=1, modifiers=("50",)), today=old))
    for finding in (later, earlier):
        assert "indicator of" in finding.detail and "is not recorded" in finding.detail
        assert [source.source_id for source in finding.sources] == ["CS-08"]


def test_an_indicator_that_allows_the_bilateral_adjustment_silences_the_rule(monkeypatch: pytest.MonkeyPatch) -> None:
    row = replace(mpfs_indicators_for("20560", DOS), bilateral_surgery="1")  # type: ignore[type-var]
    monkeypatch.setattr(bilateral_modifier, "mpfs_indicators_for", lambda code, day: row)
    assert check(context(line("20560", *two_muscles(), sequence=1, modifiers=("50",)))) == []
