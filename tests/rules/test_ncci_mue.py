"""DN-NCCI-002: units within the Medicare practitioner MUE, on the fictitious sample table of tests/data."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest

from needlecheck.mappings.datasets import using_datasets
from needlecheck.plugin.context import PriorService
from needlecheck.plugin.findings import Severity
from needlecheck.plugin.rules.ncci_mue import check_ncci_mue as check
from tests.support.builders import context, line, three_muscles, two_muscles
from tests.support.medicare import medicare

SAMPLES = Path(__file__).resolve().parent.parent / "data"
TABLE_STARTS = dt.date(2026, 1, 1)
DAY = dt.date(2026, 3, 2)


@pytest.fixture
def samples() -> Iterator[None]:
    with using_datasets(SAMPLES):
        yield


def test_without_the_data_set_it_says_once_that_it_could_not_check() -> None:
    with using_datasets(None):
        [finding] = check(medicare(line("20561", *three_muscles(), sequence=1, units=2), line("97140", sequence=2,
                                                                                             units=2)))
    assert finding.severity is Severity.INFO and "ncci-mue-practitioner" in finding.detail and finding.unchecked


def test_without_the_data_set_one_unit_per_code_and_date_needs_no_card() -> None:
    # Issue 9, card economy: one unit never exceeds an MUE, so the missing table decides nothing here.
    with using_datasets(None):
        assert check(context(line("20560", *two_muscles(), sequence=1), line("97140", sequence=2))) == []


@pytest.mark.usefixtures("samples")
def test_mai_2_adds_up_the_lines_of_the_date() -> None:
    [finding] = check(context(line("20560", *two_muscles(), sequence=1), line("20560", *two_muscles(), sequence=2)))
    assert finding.rule_id == "DN-NCCI-002" and "2 units of 20560" in finding.summary
    assert "MAI 2" in finding.detail and "claim line 1 and claim line 2" in finding.detail


@pytest.mark.usefixtures("samples")
def test_mai_2_counts_an_earlier_procedure_of_the_date() -> None:
    history = (PriorService("Procedure/dn-1", "20560", DAY),)
    [finding] = check(context(line("20560", *two_muscles(), day=DAY, sequence=1), history=history))
    assert "Procedure/dn-1" in finding.detail
    other_day = (PriorService("Procedure/dn-2", "20560", DAY - dt.timedelta(days=1)),)
    assert check(context(line("20560", *two_muscles(), day=DAY, sequence=1), history=other_day)) == []


@pytest.mark.usefixtures("samples")
def test_mai_1_looks_at_each_line_alone() -> None:
    two_lines = context(line("20561", *three_muscles(), sequence=1), line("20561", *three_muscles(), sequence=2))
    assert check(two_lines) == []
    [finding] = check(context(line("20561", *three_muscles(), units=2, sequence=1)))
    assert "MAI 1" in finding.detail


@pytest.mark.usefixtures("samples")
def test_mai_3_at_and_above_the_value() -> None:
    dn = line("20560", *two_muscles(), sequence=1)
    assert check(context(dn, line("97140", units=4, sequence=2))) == []
    [finding] = check(context(dn, line("97140", units=3, sequence=2), line("97140", units=2, sequence=3)))
    assert "5 units of 97140" in finding.summary and finding.line_key == "Claim/c1#item-2"


@pytest.mark.usefixtures("samples")
def test_the_table_applies_from_the_date_in_its_file_name() -> None:
    before = TABLE_STARTS - dt.timedelta(days=1)
    assert check(context(line("20561", *three_muscles(), day=before, units=2, sequence=1))) == []
    assert check(context(line("20561", *three_muscles(), day=TABLE_STARTS, units=2, sequence=1)))


def test_without_the_data_set_20560_above_its_shipped_mue_of_1_is_reported_with_its_source() -> None:
    # FE-07: 20560's MUE is 1 (a code page reproducing CMS's table); before, only "not checked" (Medicare) or
    # nothing (another payer) was said.
    with using_datasets(None):
        [finding] = check(context(line("20560", *two_muscles(), sequence=1, units=2)))
        [for_medicare] = check(medicare(line("20560", *two_muscles(), sequence=1, units=2)))
    assert finding.severity is Severity.WARNING and not finding.unchecked
    assert finding.summary == "2 units of 20560 on 2026-03-02 exceed its MUE of 1"
    assert "MAI not given" in finding.detail and "verify the value in the CMS file" in finding.detail
    assert [source.source_id for source in finding.sources] == ["FE-07", "CS-10"]
    assert not for_medicare.unchecked and for_medicare.summary == finding.summary


def test_without_the_data_set_20561_has_no_shipped_mue() -> None:
    # FE-07 gives 20561 only as "expect 1, unverified": no value, so Medicare still gets "not checked".
    with using_datasets(None):
        [finding] = check(medicare(line("20561", *three_muscles(), sequence=1, units=2)))
        assert finding.unchecked
        assert check(context(line("20561", *three_muscles(), sequence=1, units=2))) == []


def test_the_shipped_mue_without_its_mai_does_not_add_up_two_lines() -> None:
    # Two 1-unit lines exceed a date-of-service edit but not a line edit: the MAI the table would give decides.
    lines = (line("20560", *two_muscles(), sequence=1), line("20560", *two_muscles(), sequence=2))
    with using_datasets(None):
        assert check(context(*lines)) == []
        [finding] = check(medicare(*lines))
    assert finding.unchecked


@pytest.mark.usefixtures("samples")
def test_the_installed_table_supersedes_the_shipped_value() -> None:
    # The sample table gives 20560 MAI 2: its card cites the table, not FE-07.
    [finding] = check(context(line("20560", *two_muscles(), sequence=1, units=2)))
    assert "MAI 2" in finding.detail and "FE-07" not in [source.source_id for source in finding.sources]
