"""DN-MCR-007: ABN modifiers are not used for Medicare Advantage."""

from __future__ import annotations

import pytest

from needlecheck.plugin.findings import Severity
from needlecheck.plugin.rules.medicare_advantage_abn_modifiers import check_medicare_advantage_abn_modifiers as check
from tests.support.builders import line, two_muscles
from tests.support.medicare import COMMERCIAL, MEDICARE_ADVANTAGE, MEDICARE_FFS, medicare


@pytest.mark.parametrize("modifier", ["GA", "GX", "GY", "GZ", "gy"])
def test_an_abn_modifier_on_a_medicare_advantage_line_is_reported(modifier: str) -> None:
    [finding] = check(medicare(line("20560", *two_muscles(), sequence=1, modifiers=(modifier, "KX")),
                               coverage=MEDICARE_ADVANTAGE))
    assert finding.rule_id == "DN-MCR-007" and finding.severity is Severity.WARNING
    assert modifier.upper() in finding.summary and "KX" not in finding.summary and "MC-14" in finding.detail
    assert len(finding.summary) < 140


def test_other_modifiers_and_other_payers_are_fine() -> None:
    assert check(medicare(line("20560", *two_muscles(), sequence=1, modifiers=("KX",)),
                          coverage=MEDICARE_ADVANTAGE)) == []
    for coverage in (MEDICARE_FFS, COMMERCIAL, None):
        assert check(medicare(line("20560", *two_muscles(), sequence=1, modifiers=("GY",)), coverage=coverage)) == []
