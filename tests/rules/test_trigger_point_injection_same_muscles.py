"""DN-PAIR-001: trigger-point injection and dry needling of the same muscles."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from needlecheck.mappings.datasets import using_datasets
from needlecheck.plugin.context import PriorService
from needlecheck.plugin.engine import evaluate
from needlecheck.plugin.findings import Severity
from needlecheck.plugin.rules.trigger_point_injection_same_muscles import (
    check_trigger_point_injection_same_muscles as check,
)
from tests.support.builders import (
    DOS,
    INFRASPINATUS,
    LEFT,
    LEVATOR_SCAPULAE,
    RIGHT,
    SUPRASPINATUS,
    TRAPEZIUS,
    context,
    line,
    site,
    two_muscles,
)

SAMPLES = Path(__file__).resolve().parent.parent / "data"


def test_the_same_muscle_injected_and_needled() -> None:
    needled = line("20560", *two_muscles(), sequence=1)
    injected = line("20552", site(TRAPEZIUS, LEFT), sequence=2, substances=("lidocaine",))
    [finding] = check(context(needled, injected))
    assert finding.rule_id == "DN-PAIR-001" and finding.severity is Severity.WARNING
    assert "left trapezius" in finding.detail.lower() and "claim line 2 (20552)" in finding.detail


def test_different_muscles_without_ptp_data_make_no_finding() -> None:
    needled = line("20560", *two_muscles(), sequence=1)
    injected = line("20552", site(LEVATOR_SCAPULAE, LEFT), sequence=2)
    with using_datasets(None):
        assert check(context(needled, injected)) == []


def test_different_muscles_with_an_indicator_1_edit_ask_for_xs_on_column_2() -> None:
    needled = line("20560", *two_muscles(), sequence=1)
    injected = line("20552", site(LEVATOR_SCAPULAE, LEFT), sequence=2)
    with using_datasets(SAMPLES):
        [finding] = check(context(needled, injected))
        assert finding.severity is Severity.INFO and "XS" in finding.detail and "claim line 2" in finding.detail
        marked = line("20552", site(LEVATOR_SCAPULAE, LEFT), sequence=2, modifiers=("XS",))
        assert check(context(needled, marked)) == []


def test_muscles_that_cannot_be_compared_ask_for_a_check() -> None:
    history = (PriorService("Procedure/tpi-1", "20553", DOS),)
    [finding] = check(context(line("20561", site(INFRASPINATUS, LEFT), site(SUPRASPINATUS, LEFT),
                                   site(TRAPEZIUS, LEFT), sequence=1), history=history))
    assert finding.severity is Severity.INFO and "Procedure/tpi-1" in finding.detail


def test_an_injection_on_another_date_is_fine() -> None:
    later = DOS + dt.timedelta(days=1)
    assert check(context(line("20560", *two_muscles(), sequence=1),
                         line("20552", site(TRAPEZIUS, LEFT), day=later, sequence=2))) == []


def test_an_unsided_injection_of_a_needled_muscle_is_a_possible_conflict() -> None:
    needled = line("20560", site(TRAPEZIUS, LEFT), site(LEVATOR_SCAPULAE, LEFT), sequence=1)
    injected = line("20552", site(TRAPEZIUS), sequence=2, substances=("lidocaine",))
    [finding] = check(context(needled, injected))
    assert finding.severity is Severity.WARNING
    assert finding.summary.startswith("Check the sides") and "trapezius" in finding.detail.lower()
    assert "side" in finding.detail and "claim line 2 (20552)" in finding.detail


def test_an_unsided_needled_muscle_and_a_sided_injection_is_a_possible_conflict_too() -> None:
    needled = line("20560", site(TRAPEZIUS), site(LEVATOR_SCAPULAE, LEFT), sequence=1)
    injected = line("20552", site(TRAPEZIUS, RIGHT), sequence=2, substances=("lidocaine",))
    [finding] = check(context(needled, injected))
    assert finding.severity is Severity.WARNING and "may" in finding.summary


def test_sides_named_on_both_lines_decide() -> None:
    needled = line("20560", site(TRAPEZIUS, LEFT), sequence=1)
    injected = line("20552", site(TRAPEZIUS, RIGHT), sequence=2, substances=("lidocaine",))
    with using_datasets(None):
        assert check(context(needled, injected)) == []


def test_through_the_engine_an_unsided_injection_is_reported() -> None:
    needled = line("20560", site(TRAPEZIUS, LEFT), site(LEVATOR_SCAPULAE, LEFT), sequence=1)
    injected = line("20552", site(TRAPEZIUS), sequence=2, substances=("lidocaine",))
    findings = [f for f in evaluate(context(needled, injected)) if f.rule_id == "DN-PAIR-001"]
    assert [f.severity for f in findings] == [Severity.WARNING]
