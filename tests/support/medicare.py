"""Builders for Medicare rule tests: coverages by Source of Payment Typology, performers, conditions."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from pathlib import Path

from needlecheck.plugin.context import BillingContext, ConditionFacts, CoverageFacts, Performer, ServiceLine
from needlecheck.plugin.terms import ICD10CM_SYSTEM, Coding
from tests.support.builders import context

SOPT = "urn:oid:2.16.840.1.113883.3.221.5"
NUCC = "http://nucc.org/provider-taxonomy"
TEST_DATASETS = Path(__file__).resolve().parent.parent / "data"

MEDICARE_FFS = CoverageFacts("Coverage/ffs", type_codes=(Coding(SOPT, "1", "MEDICARE"),))
MEDICARE_ADVANTAGE = CoverageFacts("Coverage/ma", type_codes=(Coding(SOPT, "111", "Medicare HMO"),))
COMMERCIAL = CoverageFacts("Coverage/bc", type_codes=(Coding(SOPT, "5", "PRIVATE HEALTH INSURANCE"),))

PHYSICIAN = "207Q00000X"
PHYSICAL_THERAPIST = "225100000X"
CHIROPRACTOR = "111N00000X"
NURSE_PRACTITIONER = "363L00000X"
PHYSICIAN_ASSISTANT = "363A00000X"
ACUPUNCTURIST = "171100000X"

LOW_BACK_PAIN = Coding(ICD10CM_SYSTEM, "M54.50", "Low back pain, unspecified")
CERVICALGIA = Coding(ICD10CM_SYSTEM, "M54.2", "Cervicalgia")
FIBROMYALGIA = Coding(ICD10CM_SYSTEM, "M79.7", "Fibromyalgia")


def by(line: ServiceLine, *taxonomy_codes: str) -> ServiceLine:
    """``line`` performed by one practitioner coded with these NUCC taxonomy codes."""
    codes = tuple(Coding(NUCC, code) for code in taxonomy_codes)
    return replace(line, performers=(Performer("Practitioner/p1", codes),))


def icd(code: str, display: str | None = None) -> Coding:
    """An ICD-10-CM coding."""
    return Coding(ICD10CM_SYSTEM, code, display)


def condition(code: str, onset: dt.date | None, status: str | None = "active") -> ConditionFacts:
    """A Condition coded in ICD-10-CM with its onset date."""
    return ConditionFacts(f"Condition/{code}", (icd(code),), onset=onset, clinical_status=status)


def medicare(*lines: ServiceLine, coverage: CoverageFacts | None = MEDICARE_FFS,
             conditions: tuple[ConditionFacts, ...] = (), today: dt.date | None = None) -> BillingContext:
    """A claim-create context for a patient with ``coverage`` (Medicare fee-for-service by default)."""
    built = context(*lines) if today is None else context(*lines, today=today)
    return replace(built, coverage=coverage, conditions=conditions)
