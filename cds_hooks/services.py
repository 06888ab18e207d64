"""The CDS services Needlecheck offers, declared once: discovery, routing and prefetch all read these.

CPT OR-searches repeat the system on every value: ``cpt|20560,20561`` would also match a 20561 in any
other code system. They name both spellings of CPT (the FHIR URI and the OID ``urn:oid:2.16.840.1.113883.6.12``,
``mappings/code_systems.csv``): a FHIR token search compares the system string as stored, so an earlier
session an EHR recorded with the OID would otherwise be missing from the session count and same-date checks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from needlecheck.cds_hooks.crd_configuration import OPTIONS_EXTENSION, configuration_options
from needlecheck.mappings.code_systems import spellings_of
from needlecheck.mappings.cpt import CPT_SYSTEM

# Dry needling, the codes it pairs with on one date, and acupuncture (which shares Medicare's session caps).
HISTORY_CODES = ("20560", "20561", "20552", "20553", "97810", "97811", "97813", "97814", "97032", "97014")


@dataclass(frozen=True)
class PrefetchKey:
    """A prefetch template; ``checks`` says what the rules do with the data (empty: not used yet)."""

    name: str
    template: str
    checks: str = ""


@dataclass(frozen=True)
class ServiceDefinition:
    """One CDS service: its discovery entry and the context it expects."""

    service_id: str
    hook: str
    title: str
    description: str
    context_resource: str
    prefetch: tuple[PrefetchKey, ...]

    def discovery_entry(self) -> dict[str, Any]:
        """The service as ``GET /cds-services`` lists it."""
        return {
            "id": self.service_id,
            "hook": self.hook,
            "title": self.title,
            "description": self.description,
            "prefetch": {key.name: key.template for key in self.prefetch},
            "extension": {OPTIONS_EXTENSION: configuration_options()},
        }


_HISTORY_QUERY = "Procedure?patient={{context.patientId}}&code=" + ",".join(
    f"{system}|{code}" for system in spellings_of(CPT_SYSTEM) for code in HISTORY_CODES
)

PATIENT_PREFETCH = (
    PrefetchKey("patient", "Patient/{{context.patientId}}"),
    PrefetchKey("coverage", "Coverage?patient={{context.patientId}}&status=active&_include=Coverage:payor",
                "the payer's coverage policy for dry needling"),
    PrefetchKey("conditions", "Condition?patient={{context.patientId}}",
                "diagnoses, their onset and conditions that exclude coverage"),
    PrefetchKey("encounter", "Encounter?_id={{context.encounterId}}&_include=Encounter:location"
                             "&_include=Encounter:service-provider",
                "the state where the service is furnished (scope of practice)"),
    PrefetchKey("practitioner", "Practitioner/{{userPractitionerId}}",
                "who furnishes the service (payer eligibility, scope of practice)"),
    PrefetchKey("practitionerRoles", "PractitionerRole?practitioner={{userPractitionerId}}"
                                     "&_include=PractitionerRole:location&_include=PractitionerRole:organization",
                "the furnishing clinician's specialty and practice location"),
    PrefetchKey("priorProcedures", _HISTORY_QUERY,
                "earlier sessions: same-date code pairs, repeated units and session limits"),
)

ORDER_SIGN = ServiceDefinition(
    service_id="dry-needling-order-sign",
    hook="order-sign",
    title="Dry-needling coding check at order signing",
    description=(
        "Checks draft dry-needling orders (CPT 20560/20561) before they are signed: the code against the "
        "number of distinct muscles in the SNOMED CT body sites, one code and one unit per date of service, "
        "and the documentation a payer needs (each muscle named with its side, an indication)."
    ),
    context_resource="draftOrders",
    prefetch=PATIENT_PREFETCH,
)

CLAIM_CREATE = ServiceDefinition(
    service_id="dry-needling-claim-create",
    hook="claim-create",
    title="Dry-needling claim check before submission",
    description=(
        "Checks a draft claim's dry-needling lines (CPT 20560/20561) against the Procedures they bill: the "
        "code against the muscle count, both codes or several units on one date, injected substances (a "
        "trigger-point injection), codes used before 2020, and missing documentation."
    ),
    context_resource="claim",
    prefetch=PATIENT_PREFETCH,
)

SERVICES: dict[str, ServiceDefinition] = {service.service_id: service for service in (ORDER_SIGN, CLAIM_CREATE)}


def discovery_document() -> dict[str, Any]:
    """The body of ``GET /cds-services``."""
    return {"services": [service.discovery_entry() for service in SERVICES.values()]}
