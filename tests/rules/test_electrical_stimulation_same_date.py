"""DN-PAIR-004: e-stim with dry needling is a review flag."""

from __future__ import annotations

import datetime as dt

import pytest

from needlecheck.plugin.findings import Severity
from needlecheck.plugin.rules.electrical_stimulation_same_date import check_electrical_stimulation_same_date as check
from tests.support.builders import DOS, context, line, two_muscles


@pytest.mark.parametrize("code", ["97032", "97014", "G0283"])
def test_e_stim_on_the_same_date_is_information(code: str) -> None:
    [finding] = check(context(line("20560", *two_muscles(), sequence=1), line(code, sequence=2)))
    assert finding.rule_id == "DN-PAIR-004" and finding.severity is Severity.INFO
    assert code in finding.detail


def test_e_stim_on_another_date_is_not_flagged() -> None:
    later = DOS + dt.timedelta(days=1)
    assert check(context(line("20560", *two_muscles(), sequence=1), line("97032", day=later, sequence=2))) == []
