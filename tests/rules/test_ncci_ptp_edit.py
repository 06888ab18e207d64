"""DN-NCCI-001: Medicare NCCI practitioner PTP edits, on the fictitious sample file of tests/data."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest

from needlecheck.mappings.datasets import using_datasets
from needlecheck.plugin.context import PriorService
from needlecheck.plugin.findings import Severity
from needlecheck.plugin.rules.ncci_ptp_edit import check_ncci_ptp_edit as check
from tests.support.builders import context, line, three_muscles, two_muscles
from tests.support.medicare import medicare

SAMPLES = Path(__file__).resolve().parent.parent / "data"
DAY = dt.date(2026, 3, 2)
ONE_DAY = dt.timedelta(days=1)


@pytest.fixture
def samples() -> Iterator[None]:
    with using_datasets(SAMPLES):
        yield


def test_without_the_data_set_it_says_once_that_it_could_not_check() -> None:
    with using_datasets(None):
        [finding] = check(medicare(line("20560", *two_muscles(), sequence=1), line("97140", sequence=2)))
    assert finding.severity is Severity.INFO and finding.unchecked and "Not checked" in finding.summary
    assert "ncci-ptp-practitioner" in finding.detail and "not installed" in finding.detail


def test_without_the_data_set_a_line_alone_on_its_date_needs_no_card() -> None:
    # Issue 9, card economy: with no other service that date, no edit could apply; for another payer
    # than Medicare, Medicare's edits decide nothing.
    with using_datasets(None):
        assert check(medicare(line("20560", *two_muscles(), sequence=1))) == []
        assert check(context(line("20560", *two_muscles(), sequence=1), line("97140", sequence=2))) == []


def test_no_dry_needling_line_no_finding() -> None:
    with using_datasets(None):
        assert check(context(line("97140", sequence=1))) == []


@pytest.mark.usefixtures("samples")
def test_modifier_indicator_0_is_a_warning_even_with_a_modifier() -> None:
    [finding] = check(context(line("20560", *two_muscles(), sequence=1), line("97140", sequence=2, modifiers=("59",))))
    assert finding.severity is Severity.WARNING and "modifier indicator 0" in finding.detail


@pytest.mark.usefixtures("samples")
def test_modifier_indicator_1_needs_a_modifier_on_the_column_2_code() -> None:
    [finding] = check(context(line("20561", *three_muscles(), sequence=1), line("97140", day=DAY, sequence=2)))
    assert finding.severity is Severity.WARNING and "modifier indicator 1" in finding.detail
    with_xs = line("97140", sequence=2, modifiers=("XS",))
    assert check(context(line("20561", *three_muscles(), sequence=1), with_xs)) == []
    # A modifier on the column-1 code does not bypass the edit.
    assert check(context(line("20561", *three_muscles(), sequence=1, modifiers=("59",)), line("97140", sequence=2)))


@pytest.mark.usefixtures("samples")
def test_dry_needling_as_column_2_needs_the_modifier_itself() -> None:
    assert check(context(line("99213", sequence=1), line("20560", *two_muscles(), sequence=2)))
    assert check(context(line("99213", sequence=1), line("20560", *two_muscles(), sequence=2, modifiers=("25",)))) == []


@pytest.mark.usefixtures("samples")
def test_the_effective_date_of_an_edit() -> None:
    effective = dt.date(2022, 4, 1)
    before = context(line("20561", *three_muscles(), day=effective - ONE_DAY, sequence=1),
                     line("97140", day=effective - ONE_DAY, sequence=2))
    assert check(before) == []
    assert check(context(line("20561", *three_muscles(), day=effective, sequence=1),
                         line("97140", day=effective, sequence=2)))


@pytest.mark.usefixtures("samples")
def test_the_deletion_date_is_the_last_day_an_edit_applies() -> None:
    last_day = dt.date(2023, 12, 31)
    def on(day: dt.date) -> list:
        return check(context(line("20560", *two_muscles(), day=day, sequence=1), line("97810", day=day, sequence=2)))

    assert on(last_day)
    assert on(last_day + ONE_DAY) == []


@pytest.mark.usefixtures("samples")
def test_indicator_9_and_unrelated_services_make_no_finding() -> None:
    assert check(context(line("20560", *two_muscles(), sequence=1), line("97032", sequence=2))) == []
    assert check(context(line("20560", *two_muscles(), sequence=1), line("97110", sequence=2))) == []


@pytest.mark.usefixtures("samples")
def test_an_earlier_procedure_of_the_same_date() -> None:
    history = (PriorService("Procedure/mt-1", "97140", DAY),)
    [finding] = check(context(line("20560", *two_muscles(), day=DAY, sequence=1), history=history))
    assert "Procedure/mt-1" in finding.detail and finding.severity is Severity.WARNING
    history = (PriorService("Procedure/mt-2", "97140", DAY),)
    [info] = check(context(line("20561", *three_muscles(), day=DAY, sequence=1), history=history))
    assert info.severity is Severity.INFO and "not visible here" in info.detail
    earlier_day = (PriorService("Procedure/mt-3", "97140", DAY - ONE_DAY),)
    assert check(context(line("20560", *two_muscles(), day=DAY, sequence=1), history=earlier_day)) == []
