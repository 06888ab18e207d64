"""DN-PAYER-001: an unidentified payer gives one 'coverage not verified' info card."""

from __future__ import annotations

from dataclasses import replace

from needlecheck.plugin.context import BillingContext, CoverageFacts
from needlecheck.plugin.findings import Severity, Topic
from needlecheck.plugin.rules.payer_identified import check_payer_identified as check
from needlecheck.plugin.terms import Coding
from tests.support.builders import context, line

SOPT = "urn:oid:2.16.840.1.113883.3.221.5"


def covered(ctx: BillingContext, *codes: str, names: tuple[str, ...] = ()) -> BillingContext:
    return replace(ctx, coverage=CoverageFacts("Coverage/cov-1", tuple(Coding(SOPT, c) for c in codes), (), names))


def test_no_coverage_gives_one_info_for_the_whole_call() -> None:
    [finding] = check(context(line("20560", sequence=1), line("20561", sequence=2)))
    assert (finding.rule_id, finding.severity, finding.topic) == ("DN-PAYER-001", Severity.INFO, Topic.COVERAGE)
    assert finding.line_key == "Claim/c1#item-1" and "no Coverage" in finding.detail


def test_coverage_without_a_type_or_payor_is_not_verified() -> None:
    [finding] = check(covered(context(line("20560", sequence=1))))
    assert "Coverage/cov-1" in finding.detail and "names no payor" in finding.detail
    assert finding.summary.startswith("Verify coverage")


def test_a_named_payor_the_directory_does_not_know_is_no_card() -> None:
    # Issue 9, card economy: the fixtures' clean requests name "Northwind Health Plan"; an administrator's
    # matter (a directory row), not something the person signing can act on.
    assert check(covered(context(line("20560", sequence=1)), names=("Acme Benefits",))) == []


def test_an_identified_payer_is_fine() -> None:
    assert check(covered(context(line("20560", sequence=1)), "5")) == []
    assert check(covered(context(line("20560", sequence=1)), names=("Aetna",))) == []


def test_no_dry_needling_lines_no_card() -> None:
    assert check(context(line("97810", sequence=1))) == []
