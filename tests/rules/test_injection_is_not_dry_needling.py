"""DN-CODE-003: an injectate makes it a trigger-point injection."""

from __future__ import annotations

from needlecheck.plugin.findings import CodeChange
from needlecheck.plugin.rules.injection_is_not_dry_needling import check_injection_is_not_dry_needling as check
from tests.support.builders import ERECTOR_SPINAE, context, line, site, three_muscles, two_muscles


def test_lidocaine_on_two_muscles_suggests_20552() -> None:
    [finding] = check(context(line("20560", *two_muscles(), substances=("lidocaine",), sequence=1)))
    assert finding.rule_id == "DN-CODE-003"
    assert finding.fix == CodeChange("Claim/c1", "20560", "20552", 1)
    assert "lidocaine" in finding.summary


def test_three_muscles_suggest_20553() -> None:
    [finding] = check(context(line("20561", *three_muscles(), substances=("triamcinolone",))))
    assert finding.fix is not None and finding.fix.to_code == "20553"


def test_no_substance_is_fine() -> None:
    assert check(context(line("20560", *two_muscles()))) == []


def test_uncountable_sites_report_without_a_code() -> None:
    [finding] = check(context(line("20560", site(ERECTOR_SPINAE), substances=("lidocaine",))))
    assert finding.fix is None


def test_unverified_muscle_codes_report_without_a_code() -> None:
    # Gastrocnemius 181700004 is a partial (UBERON) row: it may not decide 20552 against 20553.
    [finding] = check(context(line("20560", site("181700004", "7771000"), substances=("lidocaine",))))
    assert finding.fix is None
