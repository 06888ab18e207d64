"""Issue 9, finding 5: one card per root cause per line, resolved by the rules' precedence in the engine.

Each case runs every rule through ``plugin.engine.evaluate``, as a hook call does, and looks at what a
coder would see: the rule ids of the findings left for a line.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import replace

import pytest

from needlecheck.mappings.datasets import using_datasets
from needlecheck.plugin.context import BillingContext, PriorService
from needlecheck.plugin.engine import evaluate
from needlecheck.plugin.findings import Finding, Severity
from needlecheck.plugin.rule import Precedence
from needlecheck.plugin.rules import all_rules
from needlecheck.plugin.terms import Coding
from tests.support.builders import line, two_muscles
from tests.support.medicare import (
    CERVICALGIA,
    LOW_BACK_PAIN,
    PHYSICAL_THERAPIST,
    PHYSICIAN,
    TEST_DATASETS,
    by,
    condition,
    medicare,
)

FIRST = dt.date(2026, 1, 5)


@pytest.fixture(autouse=True)
def installed_lists() -> Iterator[None]:
    with using_datasets(TEST_DATASETS):
        yield


def weekly(count: int) -> tuple[PriorService, ...]:
    return tuple(PriorService(f"Procedure/p{i}", "20560", FIRST + dt.timedelta(days=7 * i)) for i in range(count))


def session_13(performer: str, *, diagnosis: Coding = LOW_BACK_PAIN, modifiers: tuple[str, ...] = (),
               order: bool = False, sessions: int = 12) -> BillingContext:
    """A weekly session after ``sessions`` earlier ones (the 13th by default) for a Medicare FFS patient."""
    day = FIRST + dt.timedelta(days=7 * sessions)
    dn = line("20560", *two_muscles(), sequence=None if order else 1, day=day, indications=(diagnosis,),
              modifiers=modifiers)
    built = medicare(by(dn, performer), conditions=(condition(str(diagnosis.code), dt.date(2025, 1, 2)),), today=day)
    built = replace(built, history=weekly(sessions))
    return replace(built, hook="order-sign") if order else built


def shown(findings: list[Finding]) -> set[str]:
    return {finding.rule_id for finding in findings if not finding.unchecked}


def test_every_rule_declares_its_precedence() -> None:
    assert all(isinstance(rule.precedence, Precedence) for rule in all_rules())
    by_id = {rule.rule_id: rule.precedence for rule in all_rules()}
    assert by_id["DN-MCR-004"] < by_id["DN-MCR-001"] < by_id["DN-CODE-001"] < by_id["DN-FREQ-001"] < by_id["DN-DOC-010"]


def test_a_physical_therapists_13th_medicare_session_gets_the_statutory_exclusion_only() -> None:
    findings = evaluate(session_13(PHYSICAL_THERAPIST))
    assert "DN-MCR-004" in shown(findings)
    assert not shown(findings) & {"DN-FREQ-001", "DN-MCR-001", "DN-MCR-002", "DN-DOC-010"}


def test_with_gp_and_gy_a_physical_therapists_line_is_not_asked_for_kx() -> None:
    findings = evaluate(session_13(PHYSICAL_THERAPIST, modifiers=("GP", "GY")))
    assert "DN-FREQ-001" not in shown(findings)
    assert not any("KX" in finding.summary for finding in findings)


def test_a_neck_diagnosis_gets_one_coverage_card_not_kx_nor_low_back_documentation() -> None:
    findings = evaluate(session_13(PHYSICIAN, diagnosis=CERVICALGIA))
    assert "DN-MCR-001" in shown(findings)
    assert not shown(findings) & {"DN-FREQ-001", "DN-MCR-002", "DN-DOC-010"}
    assert not any("low back pain" in f.summary.lower() for f in findings if f.rule_id != "DN-MCR-001")


def test_a_covered_13th_session_still_needs_kx_on_the_claim() -> None:
    [freq] = [f for f in evaluate(session_13(PHYSICIAN)) if f.rule_id == "DN-FREQ-001"]
    assert "KX" in freq.summary and freq.severity is Severity.WARNING


def test_an_order_is_told_what_to_document_not_to_add_kx() -> None:
    [freq] = [f for f in evaluate(session_13(PHYSICIAN, order=True)) if f.rule_id == "DN-FREQ-001"]
    assert "KX" not in freq.summary and "improvement" in freq.summary.lower()


def test_an_order_by_a_physical_therapist_is_told_about_the_abn_not_modifiers() -> None:
    [card] = [f for f in evaluate(session_13(PHYSICAL_THERAPIST, order=True)) if f.rule_id == "DN-MCR-004"]
    assert "ABN" in card.summary and "GY" not in card.summary


def test_a_21st_session_with_ga_gets_abn_advice() -> None:
    [freq] = [f for f in evaluate(session_13(PHYSICIAN, modifiers=("KX", "GA"), sessions=20))
              if f.rule_id == "DN-FREQ-001"]
    assert "ABN" in freq.summary or "ABN" in freq.detail
    assert "GA" in freq.detail


def test_a_21st_session_without_liability_modifier_gets_abn_advice_too() -> None:
    [freq] = [f for f in evaluate(session_13(PHYSICIAN, modifiers=("KX",), sessions=20)) if f.rule_id == "DN-FREQ-001"]
    assert "ABN" in freq.detail and "**GA**" in freq.detail


def test_a_line_with_ga_for_a_neck_diagnosis_gets_abn_advice() -> None:
    [card] = [f for f in evaluate(session_13(PHYSICIAN, diagnosis=CERVICALGIA, modifiers=("GA",)))
              if f.rule_id == "DN-MCR-001"]
    assert "ABN" in card.detail


def test_rules_markdown_shows_the_precedence() -> None:
    from needlecheck.cds_hooks.cli import rules_markdown
    text = rules_markdown()
    assert "Precedence" in text and "statutory exclusion" in text.lower()


def test_one_coverage_card_per_line_even_when_two_coverage_rules_fire() -> None:
    # Before the NCD: DN-MCR-001 says nothing was covered; no other coverage card on the same line.
    early = dt.date(2020, 1, 10)
    dn = by(line("20560", *two_muscles(), sequence=1, day=early, indications=(CERVICALGIA,)), PHYSICIAN)
    findings = evaluate(medicare(dn, today=early))
    coverage = [f for f in findings if not f.unchecked and f.rule_id.startswith(("DN-MCR", "DN-PAYER", "DN-FREQ"))]
    assert [f.rule_id for f in coverage] == ["DN-MCR-001"]
