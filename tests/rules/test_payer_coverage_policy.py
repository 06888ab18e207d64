"""DN-PAYER-002: the pack's policy in force on the date of service."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import pytest

from needlecheck.plugin.context import BillingContext, CoverageFacts
from needlecheck.plugin.findings import Severity, Topic
from needlecheck.plugin.rules.payer_coverage_policy import check_payer_coverage_policy as check
from needlecheck.plugin.terms import Coding
from tests.support.builders import context, line

SOPT = "urn:oid:2.16.840.1.113883.3.221.5"


def billed(day: dt.date, *codes: str, names: tuple[str, ...] = ()) -> BillingContext:
    coverage = CoverageFacts("Coverage/cov-1", tuple(Coding(SOPT, c) for c in codes), (), names)
    return replace(context(line("20560", day=day, sequence=1), today=day), coverage=coverage)


def source_ids(findings: list) -> list[tuple[str, ...]]:  # type: ignore[type-arg]
    return [tuple(source.source_id for source in finding.sources) for finding in findings]


def test_bcbsa_mp740_covered_before_2021_07_01() -> None:
    assert check(billed(dt.date(2021, 6, 30), "6", names=("Florida Blue",))) == []


def test_bcbsa_mp740_investigational_after_2021_07_01() -> None:
    [finding] = check(billed(dt.date(2021, 7, 2), "6", names=("Florida Blue",)))
    assert (finding.rule_id, finding.severity, finding.topic) == ("DN-PAYER-002", Severity.WARNING, Topic.COVERAGE)
    assert "investigational" in finding.summary and len(finding.summary) < 140
    assert source_ids([finding]) == [("PY-04",)]
    assert finding.sources[0].url.startswith("https://fl-policies.exploremyplan.com")


def test_mp740_leaves_2021_07_01_unstated_so_the_general_warning_applies() -> None:
    [finding] = check(billed(dt.date(2021, 7, 1), "6", names=("Florida Blue",)))
    assert finding.severity is Severity.WARNING and source_ids([finding]) == [("PY-14",)]


def test_amerihealth_investigational_from_2020_11_30() -> None:
    [after] = check(billed(dt.date(2020, 11, 30), "5", names=("AmeriHealth",)))
    assert source_ids([after]) == [("PY-05",)] and "investigational" in after.summary


def test_amerihealth_before_2020_11_30_has_no_statement_and_gets_the_general_warning() -> None:
    [before] = check(billed(dt.date(2020, 11, 29), "5", names=("AmeriHealth",)))
    assert source_ids([before]) == [("PY-14",)] and "do not cover" in before.summary


@pytest.mark.parametrize(("name", "source"), [
    ("Aetna", "PY-01"), ("Anthem Blue Cross", "PY-02"), ("EmblemHealth", "PY-06"), ("TRICARE West", "PY-08"),
])
def test_packs_that_do_not_cover_dry_needling(name: str, source: str) -> None:
    [finding] = check(billed(dt.date(2026, 3, 2), names=(name,)))
    assert finding.severity is Severity.WARNING and source_ids([finding]) == [(source,)]
    assert "waiver" in finding.detail


def test_commercial_payer_without_a_pack_gets_py14_default() -> None:
    [finding] = check(billed(dt.date(2026, 3, 2), "5", names=("Acme Health Plan",)))
    assert finding.severity is Severity.WARNING and source_ids([finding]) == [("PY-14",)]


def test_unknown_status_pack_cites_both_its_source_and_py14() -> None:
    [finding] = check(billed(dt.date(2026, 3, 2), "5", names=("UnitedHealthcare",)))
    assert finding.severity is Severity.WARNING and source_ids([finding]) == [("PY-14", "PY-07")]


def test_workers_comp_pack_that_covers_is_fine_and_other_classes_get_info() -> None:
    assert check(billed(dt.date(2026, 3, 2), "95", names=("Washington State Labor & Industries",))) == []
    [medicaid] = check(billed(dt.date(2026, 3, 2), "2"))
    assert medicaid.severity is Severity.INFO


def test_medicare_and_unknown_payers_are_left_to_other_rules() -> None:
    assert check(billed(dt.date(2026, 3, 2), "121")) == []
    assert check(billed(dt.date(2019, 12, 2), "121")) == []
    assert check(billed(dt.date(2026, 3, 2), "112", names=("Aetna Medicare Advantage",))) == []
    assert check(billed(dt.date(2026, 3, 2))) == []


def test_one_payer_card_per_claim_naming_every_line() -> None:
    day = dt.date(2026, 3, 2)
    ctx = replace(context(line("20560", day=day, sequence=1), line("20561", day=day + dt.timedelta(days=7),
                                                                       sequence=2), line("97810", sequence=3)),
                  coverage=CoverageFacts("Coverage/c", (), (), ("Aetna",)))
    [finding] = check(ctx)
    assert finding.line_key == "Claim/c1#item-1"
    assert "claim line 1" in finding.detail.lower() and "claim line 2" in finding.detail.lower()
    assert "Aetna" not in finding.summary and "Aetna" in finding.detail


@pytest.mark.parametrize("name", ["Blue Cross and Blue Shield of Texas", "Blue Cross Blue Shield of Michigan",
                                  "Wellmark Blue Cross and Blue Shield"])
@pytest.mark.parametrize("codes", [(), ("6",)])
def test_blue_plans_other_than_florida_blue_get_the_generic_advice_not_mp740(name: str,
                                                                             codes: tuple[str, ...]) -> None:
    # MP-740 is Florida Blue's policy; no source says what these plans decided.
    [finding] = check(billed(dt.date(2026, 3, 2), *codes, names=(name,)))
    assert source_ids([finding]) == [("PY-14",)]
    assert "considers" not in finding.summary and "investigational" not in finding.summary
    assert "MP-740" not in finding.detail and "Most large commercial payers" in finding.detail
    assert "most commercial payers do not cover" in finding.summary
