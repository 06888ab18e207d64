"""DN-MCR-005: GA, GY and GZ are not combined on one line."""

from __future__ import annotations

import pytest

from needlecheck.plugin.findings import Severity
from needlecheck.plugin.rules.medicare_liability_modifiers_combined import (
    check_medicare_liability_modifiers_combined as check,
)
from tests.support.builders import line, two_muscles
from tests.support.medicare import COMMERCIAL, MEDICARE_ADVANTAGE, medicare


@pytest.mark.parametrize("modifiers", [("GA", "GY"), ("GY", "GZ"), ("ga", "gz"), ("GA", "GY", "GZ")])
def test_two_exclusive_modifiers_are_reported(modifiers: tuple[str, ...]) -> None:
    [finding] = check(medicare(line("20560", *two_muscles(), sequence=3, modifiers=modifiers)))
    assert finding.rule_id == "DN-MCR-005" and finding.severity is Severity.WARNING
    assert "claim line 3" in finding.detail.lower()
    assert all(f"**{modifier.upper()}**" in finding.detail for modifier in modifiers)
    assert len(finding.summary) < 140


@pytest.mark.parametrize("modifiers", [("GY",), ("GX", "GY"), ("GA", "GX"), ("GA", "KX"), ()])
def test_one_exclusive_modifier_is_fine(modifiers: tuple[str, ...]) -> None:
    assert check(medicare(line("20560", *two_muscles(), sequence=3, modifiers=modifiers))) == []


def test_only_traditional_medicare_is_checked() -> None:
    combined = line("20560", *two_muscles(), sequence=3, modifiers=("GA", "GY"))
    assert check(medicare(combined, coverage=MEDICARE_ADVANTAGE)) == []
    assert check(medicare(combined, coverage=COMMERCIAL)) == []
