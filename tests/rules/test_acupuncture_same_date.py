"""DN-PAIR-002: dry needling and acupuncture on one date."""

from __future__ import annotations

import datetime as dt

from needlecheck.plugin.context import PriorService
from needlecheck.plugin.findings import Severity
from needlecheck.plugin.rules.acupuncture_same_date import check_acupuncture_same_date as check
from tests.support.builders import DOS, context, line, two_muscles


def test_acupuncture_line_on_the_same_date() -> None:
    [finding] = check(context(line("20560", *two_muscles(), sequence=1), line("97810", sequence=2)))
    assert finding.rule_id == "DN-PAIR-002" and finding.severity is Severity.WARNING
    assert finding.line_key == "Claim/c1#item-1" and "claim line 2 (97810)" in finding.detail


def test_acupuncture_on_another_date_is_fine() -> None:
    later = DOS + dt.timedelta(days=1)
    assert check(context(line("20560", *two_muscles(), sequence=1), line("97813", day=later, sequence=2))) == []


def test_an_earlier_acupuncture_procedure_of_the_same_date() -> None:
    history = (PriorService("Procedure/acu-1", "97811", DOS),)
    [finding] = check(context(line("20561", sequence=1), history=history))
    assert "Procedure/acu-1" in finding.detail


def test_acupuncture_billed_after_a_dry_needling_procedure_attaches_to_the_acupuncture_line() -> None:
    history = (PriorService("Procedure/dn-1", "20560", DOS),)
    [finding] = check(context(line("97810", sequence=1), history=history))
    assert finding.line_key == "Claim/c1#item-1" and "Procedure/dn-1" in finding.detail


def test_dry_needling_alone_is_fine() -> None:
    assert check(context(line("20560", *two_muscles(), sequence=1), line("97110", sequence=2))) == []
