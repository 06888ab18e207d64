"""DN-DOC-003: an indication is documented."""

from __future__ import annotations

from needlecheck.plugin.rules.indication_documented import check_indication_documented as check
from tests.support.builders import MYALGIA, context, line, two_muscles


def test_no_indication_is_reported() -> None:
    [finding] = check(context(line("20560", *two_muscles(), indications=(), sequence=1)))
    assert finding.rule_id == "DN-DOC-003"
    assert "claim line 1" in finding.detail.lower()


def test_a_diagnosis_is_enough() -> None:
    assert check(context(line("20560", *two_muscles(), indications=(MYALGIA,)))) == []
