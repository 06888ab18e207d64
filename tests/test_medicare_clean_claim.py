"""A clean Medicare claim draws no warning from any rule, and the NCD 30.3.3 rules fire through the engine."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

from needlecheck.mappings.datasets import using_datasets
from needlecheck.mappings.documentation import documentation_elements
from needlecheck.plugin.context import BillingContext, ServiceLine
from needlecheck.plugin.engine import evaluate
from needlecheck.plugin.findings import Severity
from tests.support.builders import DOS, LEFT, TRAPEZIUS, line, site
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


def clean_line(performer: str = PHYSICIAN) -> ServiceLine:
    """20560 for one named muscle with its side, chronic low back pain, fully documented."""
    base = by(line("20560", site(TRAPEZIUS, LEFT), sequence=1, indications=(LOW_BACK_PAIN,)), performer)
    return replace(base, documented=frozenset(documentation_elements()), is_procedure_record=True,
                   service_state="TX")


def clean_claim(performer: str = PHYSICIAN) -> BillingContext:
    return medicare(clean_line(performer), conditions=(condition("M54.50", DOS - dt.timedelta(days=365)),))


def test_a_clean_medicare_claim_draws_no_warning() -> None:
    with using_datasets(TEST_DATASETS):
        findings = evaluate(clean_claim())
    warnings = [(finding.rule_id, finding.summary) for finding in findings if finding.severity is Severity.WARNING]
    assert warnings == []
    assert not [finding for finding in findings if finding.rule_id.startswith("DN-MCR")]


def test_the_same_claim_for_neck_pain_or_by_a_physical_therapist_draws_the_medicare_warnings() -> None:
    neck = replace(clean_claim(), lines=(replace(clean_line(), indications=(CERVICALGIA,)),))
    with using_datasets(TEST_DATASETS):
        neck_rules = {finding.rule_id for finding in evaluate(neck) if finding.severity is Severity.WARNING}
        pt_rules = {finding.rule_id for finding in evaluate(clean_claim(PHYSICAL_THERAPIST))
                    if finding.severity is Severity.WARNING}
    assert "DN-MCR-001" in neck_rules
    assert "DN-MCR-004" in pt_rules and "DN-MCR-001" not in pt_rules
