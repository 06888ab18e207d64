"""DN-MOD-001: no modifier 50 on 20560/20561."""

from __future__ import annotations

from needlecheck.plugin.rules.bilateral_modifier import check_bilateral_modifier as check
from tests.support.builders import context, line, two_muscles


def test_modifier_50_on_dry_needling() -> None:
    [finding] = check(context(line("20560", *two_muscles(), sequence=1, modifiers=("50",))))
    assert finding.rule_id == "DN-MOD-001" and "modifier 50" in finding.summary


def test_rt_and_lt_are_information_only() -> None:
    assert check(context(line("20560", *two_muscles(), sequence=1, modifiers=("RT", "LT")))) == []


def test_modifier_50_on_another_code_is_not_this_rule() -> None:
    assert check(context(line("20552", *two_muscles(), sequence=1, modifiers=("50",)))) == []
