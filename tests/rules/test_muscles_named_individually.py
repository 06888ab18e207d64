"""DN-DOC-001: each body site names one muscle."""

from __future__ import annotations

from needlecheck.plugin.rules.muscles_named_individually import check_muscles_named_individually as check
from tests.support.builders import BACK_REGION, ERECTOR_SPINAE, LEFT, TRAPEZIUS, context, line, site, two_muscles


def test_group_unmapped_and_text_sites_are_each_named() -> None:
    sites = (site(TRAPEZIUS, LEFT), site(ERECTOR_SPINAE), site(BACK_REGION), site(text="paraspinals"))
    [finding] = check(context(line("20560", *sites)))
    assert finding.rule_id == "DN-DOC-001"
    assert "paraspinals" in finding.detail and BACK_REGION in finding.detail
    assert "a group or region" in finding.detail and "text only" in finding.detail
    assert len(finding.summary) < 140


def test_named_muscles_are_fine() -> None:
    assert check(context(line("20560", *two_muscles()))) == []


def test_a_line_with_no_body_site_is_reported() -> None:
    [finding] = check(context(line("20561")))
    assert "no muscles documented" in finding.summary.lower()
