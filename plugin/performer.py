"""Who performed a service, as provider types (physician, physical therapist ...) rules can reason about.

The codes come from ``line.performers[*].codes`` (PractitionerRole.code, Practitioner.qualification);
``mappings/provider_types.csv`` says which NUCC taxonomy and HL7 v2-0360 degree codes mean which type.
"""

from __future__ import annotations

from enum import StrEnum

from needlecheck.mappings.provider_types import provider_types_of_code
from needlecheck.plugin.context import ServiceLine


class ProviderType(StrEnum):
    """Kinds of practitioner whose eligibility to furnish dry needling differs between payers and states."""

    PHYSICIAN = "physician"
    PHYSICIAN_ASSISTANT = "physician-assistant"
    NURSE_PRACTITIONER = "nurse-practitioner"
    CLINICAL_NURSE_SPECIALIST = "clinical-nurse-specialist"
    PHYSICAL_THERAPIST = "physical-therapist"
    PHYSICAL_THERAPIST_ASSISTANT = "physical-therapist-assistant"
    CHIROPRACTOR = "chiropractor"
    ACUPUNCTURIST = "acupuncturist"


_MEMBERS = {kind.value: kind for kind in ProviderType}  # a lookup, not an Enum call per coding (several rules ask)


def provider_types(line: ServiceLine) -> frozenset[ProviderType]:
    """Every provider type any performer of ``line`` is coded as; empty when none is recognised."""
    return frozenset(
        _MEMBERS.get(kind) or ProviderType(kind)
        for performer in line.performers
        for coding in performer.codes
        for kind in provider_types_of_code(coding.system, coding.code)
    )
