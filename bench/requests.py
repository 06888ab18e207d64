"""The benchmark request bodies: realistic FHIR R4 CDS Hooks calls with every prefetch key filled.

All calls are for one patient's dry-needling visit on ``TODAY``. None names a ``fhirServer``, so
answering them never touches the network. Each builder returns a fresh dict, so a caller may mutate it.

- ``order_sign_request()``: ``order-sign`` with a draft 20561 order for three muscles (left and right
  trapezius, left levator scapulae) next to an unrelated order, and full prefetch. Clean: no card.
- ``claim_create_request()``: ``claim-create`` with a draft professional Claim billing 20560 for the
  contained Procedure (left trapezius, left levator scapulae), and full prefetch. Clean: no card.
- ``claim_create_three_muscles_request()``: the same Claim, but its Procedure names a third muscle (left
  infraspinatus), so 20560 is billed for three muscles: one DN-CODE-001 card (bill 20561).

``BODIES`` lists the three with the rule ids each must fire (none for a clean request);
``tests/test_bench_bodies.py`` holds them to it, so the benchmark cannot drift from "clean" unnoticed.

Full prefetch is every key of the services' prefetch templates: patient, coverage (Bundle, 1 Coverage),
conditions (Bundle, 2 Conditions), encounter, practitioner, practitionerRoles (Bundle, 1 role) and
priorProcedures (Bundle, ``PRIOR_SESSIONS`` dry-needling Procedures on earlier weekly visits).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

TODAY = dt.date(2026, 4, 14)
PRIOR_SESSIONS = 10

BASE = "https://ehr.example.org/fhir"
CPT = "http://www.ama-assn.org/go/cpt"
SNOMED = "http://snomed.info/sct"
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
LATERALITY_EXTENSION = "http://hl7.org/fhir/us/mcode/StructureDefinition/mcode-laterality-qualifier"

PATIENT_ID = "nc-pat-1"
PRACTITIONER_ID = "nc-prac-1"
ENCOUNTER_ID = f"nc-enc-{TODAY:%Y%m%d}"
MYALGIA_CONDITION_ID = "nc-cond-m7918"

LEFT = ("7771000", "Left")
RIGHT = ("24028007", "Right")
TRAPEZIUS = ("31764008", "Structure of trapezius muscle")
LEVATOR_SCAPULAE = ("11327007", "Structure of levator scapulae muscle")
INFRASPINATUS = ("72573008", "Infraspinatus muscle structure")

CPT_DISPLAY = {
    "20560": "Needle insertion(s) without injection(s); 1 or 2 muscle(s)",
    "20561": "Needle insertion(s) without injection(s); 3 or more muscles",
    "97110": "Therapeutic procedure, 1 or more areas, each 15 minutes; therapeutic exercises",
}

Json = dict[str, Any]


def _coding(system: str, code: str, display: str) -> Json:
    return {"system": system, "code": code, "display": display}


def _concept(system: str, code: str, display: str, text: str | None = None) -> Json:
    concept: Json = {"coding": [_coding(system, code, display)]}
    if text:
        concept["text"] = text
    return concept


def _cpt(code: str, text: str) -> Json:
    return _concept(CPT, code, CPT_DISPLAY[code], text)


def _myalgia() -> Json:
    return _concept(ICD10CM, "M79.18", "Myalgia, other site")


def body_site(muscle: tuple[str, str], side: tuple[str, str], text: str) -> Json:
    """A SNOMED CT muscle as ``bodySite`` with the mCODE laterality qualifier extension."""
    return {
        "extension": [{"url": LATERALITY_EXTENSION, "valueCodeableConcept": _concept(SNOMED, *side)}],
        "coding": [_coding(SNOMED, *muscle)],
        "text": text,
    }


def _searchset(query: str, resources: list[Json]) -> Json:
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": len(resources),
        "link": [{"relation": "self", "url": f"{BASE}/{query}"}],
        "entry": [{"fullUrl": f"{BASE}/{r['resourceType']}/{r['id']}", "resource": r, "search": {"mode": "match"}}
                  for r in resources],
    }


def _patient() -> Json:
    return {
        "resourceType": "Patient",
        "id": PATIENT_ID,
        "identifier": [{
            "use": "usual",
            "type": _concept("http://terminology.hl7.org/CodeSystem/v2-0203", "MR", "Medical record number"),
            "system": "https://ehr.example.org/identifiers/mrn",
            "value": "NC0001001",
        }],
        "active": True,
        "name": [{"use": "official", "family": "Delgado", "given": ["Rosa", "M"]}],
        "telecom": [{"system": "phone", "value": "555-010-1001", "use": "mobile"}],
        "gender": "female",
        "birthDate": "1978-06-23",
        "address": [{"use": "home", "line": ["1420 Juniper St"], "city": "Denver", "state": "CO",
                     "postalCode": "80206", "country": "US"}],
    }


def _coverage() -> Json:
    coverage = {
        "resourceType": "Coverage",
        "id": "nc-cov-1",
        "identifier": [{"system": "https://northwind-health.example.org/member-id", "value": "NWH884213307"}],
        "status": "active",
        "type": _concept("http://terminology.hl7.org/CodeSystem/v3-ActCode", "PPO",
                         "preferred provider organization policy"),
        "subscriberId": "NWH884213307",
        "beneficiary": {"reference": f"Patient/{PATIENT_ID}"},
        "relationship": _concept("http://terminology.hl7.org/CodeSystem/subscriber-relationship", "self", "Self"),
        "period": {"start": "2019-01-01"},
        "payor": [{"reference": "Organization/nc-org-payer", "display": "Northwind Health Plan"}],
        "class": [
            {"type": _concept("http://terminology.hl7.org/CodeSystem/coverage-class", "group", "Group"),
             "value": "GRP-40712", "name": "Front Range Employers Trust"},
            {"type": _concept("http://terminology.hl7.org/CodeSystem/coverage-class", "plan", "Plan"),
             "value": "PPO-GOLD", "name": "Northwind PPO Gold"},
        ],
    }
    return _searchset(f"Coverage?patient={PATIENT_ID}&status=active", [coverage])


def _condition(condition_id: str, code: str, display: str, onset: str, clinical: str,
               abatement: str | None = None) -> Json:
    condition: Json = {
        "resourceType": "Condition",
        "id": condition_id,
        "clinicalStatus": _concept("http://terminology.hl7.org/CodeSystem/condition-clinical", clinical,
                                   clinical.capitalize()),
        "verificationStatus": _concept("http://terminology.hl7.org/CodeSystem/condition-ver-status", "confirmed",
                                       "Confirmed"),
        "category": [_concept("http://terminology.hl7.org/CodeSystem/condition-category", "problem-list-item",
                              "Problem List Item")],
        "code": _concept(ICD10CM, code, display),
        "subject": {"reference": f"Patient/{PATIENT_ID}"},
        "onsetDateTime": onset,
        "recordedDate": onset,
        "recorder": {"reference": f"Practitioner/{PRACTITIONER_ID}"},
    }
    if abatement:
        condition["abatementDateTime"] = abatement
    return condition


def _conditions() -> Json:
    return _searchset(f"Condition?patient={PATIENT_ID}", [
        _condition(MYALGIA_CONDITION_ID, "M79.18", "Myalgia, other site", "2024-11-05", "active"),
        _condition("nc-cond-m542", "M54.2", "Cervicalgia", "2019-10-02", "resolved", "2020-03-15"),
    ])


def _encounter() -> Json:
    return {
        "resourceType": "Encounter",
        "id": ENCOUNTER_ID,
        "status": "in-progress",
        "class": _coding("http://terminology.hl7.org/CodeSystem/v3-ActCode", "AMB", "ambulatory"),
        "type": [_concept(SNOMED, "390906007", "Follow-up encounter", "Physical medicine follow-up visit")],
        "subject": {"reference": f"Patient/{PATIENT_ID}"},
        "participant": [{
            "type": [_concept("http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "ATND", "attender")],
            "individual": {"reference": f"Practitioner/{PRACTITIONER_ID}", "display": "Elena Marsh, MD"},
        }],
        "period": {"start": f"{TODAY.isoformat()}T08:30:00-06:00"},
        "reasonCode": [_myalgia()],
        "serviceProvider": {"reference": "Organization/nc-org-clinic",
                            "display": "Front Range Spine & Sports Medicine"},
    }


def _practitioner() -> Json:
    return {
        "resourceType": "Practitioner",
        "id": PRACTITIONER_ID,
        "identifier": [{"system": "http://hl7.org/fhir/sid/us-npi", "value": "1987654328"}],
        "active": True,
        "name": [{"use": "official", "family": "Marsh", "given": ["Elena"], "suffix": ["MD"]}],
        "gender": "female",
        "qualification": [{"code": _concept("http://terminology.hl7.org/CodeSystem/v2-0360", "MD",
                                            "Doctor of Medicine")}],
    }


def _practitioner_roles() -> Json:
    role = {
        "resourceType": "PractitionerRole",
        "id": "nc-prole-1",
        "active": True,
        "period": {"start": "2018-07-01"},
        "practitioner": {"reference": f"Practitioner/{PRACTITIONER_ID}", "display": "Elena Marsh, MD"},
        "organization": {"reference": "Organization/nc-org-clinic", "display": "Front Range Spine & Sports Medicine"},
        "code": [_concept("http://nucc.org/provider-taxonomy", "208100000X",
                          "Physical Medicine & Rehabilitation Physician")],
    }
    return _searchset(f"PractitionerRole?practitioner={PRACTITIONER_ID}", [role])


def dry_needling_procedure(procedure_id: str, code: str, performed: dt.datetime, sites: list[Json],
                           encounter_id: str) -> Json:
    """A completed dry-needling Procedure (no injectate) with its muscles and the M79.18 indication."""
    muscles = ", ".join(site["text"] for site in sites)
    return {
        "resourceType": "Procedure",
        "id": procedure_id,
        "status": "completed",
        "category": _concept(SNOMED, "277132007", "Therapeutic procedure"),
        "code": _cpt(code, "Dry needling, 1-2 muscles" if code == "20560" else "Dry needling, 3 or more muscles"),
        "subject": {"reference": f"Patient/{PATIENT_ID}"},
        "encounter": {"reference": f"Encounter/{encounter_id}"},
        "performedDateTime": performed.isoformat(),
        "recorder": {"reference": f"Practitioner/{PRACTITIONER_ID}"},
        "performer": [{"actor": {"reference": f"Practitioner/{PRACTITIONER_ID}", "display": "Elena Marsh, MD"}}],
        "reasonCode": [_myalgia()],
        "reasonReference": [{"reference": f"Condition/{MYALGIA_CONDITION_ID}"}],
        "bodySite": sites,
        "note": [{"text": f"Dry needling, no injectate. {muscles}; local twitch responses."},
                 {"text": "Informed consent obtained: benefits and risks of dry needling explained."}],
    }


def _prior_procedures(sessions: int = PRIOR_SESSIONS) -> Json:
    """Weekly sessions before ``TODAY``, alternating two-muscle (20560) and three-muscle (20561) visits."""
    mountain = dt.timezone(dt.timedelta(hours=-6))
    procedures = []
    for week in range(1, sessions + 1):
        day = TODAY - dt.timedelta(weeks=week)
        performed = dt.datetime.combine(day, dt.time(8, 45), mountain)
        sites = [body_site(TRAPEZIUS, LEFT, "Left upper trapezius"),
                 body_site(LEVATOR_SCAPULAE, LEFT, "Left levator scapulae")]
        code = "20560"
        if week % 2:
            sites.append(body_site(INFRASPINATUS, LEFT, "Left infraspinatus"))
            code = "20561"
        procedures.append(dry_needling_procedure(f"nc-proc-{code}-{day:%Y%m%d}", code, performed, sites,
                                                 f"nc-enc-{day:%Y%m%d}"))
    query = f"Procedure?patient={PATIENT_ID}&code=" + ",".join(f"{CPT}|{c}" for c in ("20560", "20561"))
    return _searchset(query, procedures)


def full_prefetch() -> Json:
    """Every prefetch key the two services declare, filled as an EHR would send it."""
    return {
        "patient": _patient(),
        "coverage": _coverage(),
        "conditions": _conditions(),
        "encounter": _encounter(),
        "practitioner": _practitioner(),
        "practitionerRoles": _practitioner_roles(),
        "priorProcedures": _prior_procedures(),
    }


def _placer_identifier(value: str) -> list[Json]:
    return [{
        "type": _concept("http://terminology.hl7.org/CodeSystem/v2-0203", "PLAC", "Placer Identifier"),
        "system": "https://ehr.example.org/identifiers/placer-order",
        "value": value,
    }]


def _service_request(request_id: str, code: str, text: str, occurrence: str, **extra: Any) -> Json:
    order: Json = {
        "resourceType": "ServiceRequest",
        "id": request_id,
        "identifier": _placer_identifier(request_id.upper()),
        "status": "draft",
        "intent": "order",
        "category": [_concept(SNOMED, "277132007", "Therapeutic procedure")],
        "priority": "routine",
        "code": _cpt(code, text),
        "subject": {"reference": f"Patient/{PATIENT_ID}"},
        "encounter": {"reference": f"Encounter/{ENCOUNTER_ID}"},
        "occurrenceDateTime": occurrence,
        "authoredOn": f"{TODAY.isoformat()}T08:52:11-06:00",
        "requester": {"reference": f"Practitioner/{PRACTITIONER_ID}", "display": "Elena Marsh, MD"},
        "reasonCode": [_myalgia()],
    }
    order.update(extra)
    return order


def order_sign_request() -> Json:
    """``order-sign``: a draft 20561 order (three muscles) and a therapeutic-exercise order, full prefetch."""
    dry_needling = _service_request(
        "nc-sr-dn-0414a", "20561", "Dry needling, 3 or more muscles", f"{TODAY.isoformat()}T10:30:00-06:00",
        reasonReference=[{"reference": f"Condition/{MYALGIA_CONDITION_ID}"}],
        bodySite=[
            body_site(TRAPEZIUS, LEFT, "Left upper trapezius"),
            body_site(TRAPEZIUS, RIGHT, "Right upper trapezius"),
            body_site(LEVATOR_SCAPULAE, LEFT, "Left levator scapulae"),
        ],
        note=[{"text": "Dry needling, no injectate. Bilateral upper trapezius and left levator scapulae."}],
    )
    exercise = _service_request(
        "nc-sr-pt-0414a", "97110", "Therapeutic exercise", f"{TODAY.isoformat()}T11:00:00-06:00",
        quantityQuantity={"value": 2, "unit": "15 min units"},
        note=[{"text": "Scapular stabilisation program."}],
    )
    return {
        "hook": "order-sign",
        "hookInstance": "d68dbbe4-4361-42b0-a954-93038b44c0c8",
        "context": {
            "userId": f"Practitioner/{PRACTITIONER_ID}",
            "patientId": PATIENT_ID,
            "encounterId": ENCOUNTER_ID,
            "draftOrders": {
                "resourceType": "Bundle",
                "type": "collection",
                "entry": [{"fullUrl": f"{BASE}/ServiceRequest/{order['id']}", "resource": order}
                          for order in (dry_needling, exercise)],
            },
        },
        "prefetch": full_prefetch(),
    }


def _claim() -> Json:
    performed = dt.datetime.combine(TODAY, dt.time(10, 30), dt.timezone(dt.timedelta(hours=-6)))
    procedure = dry_needling_procedure("p1", "20560", performed, [
        body_site(TRAPEZIUS, LEFT, "Left upper trapezius"),
        body_site(LEVATOR_SCAPULAE, LEFT, "Left levator scapulae"),
    ], ENCOUNTER_ID)
    usd = {"value": 65.0, "currency": "USD"}
    return {
        "resourceType": "Claim",
        "id": "nc-claim-0414a",
        "contained": [procedure],
        "identifier": [{"system": "https://ehr.example.org/identifiers/claim", "value": "NC-CLAIM-0414A"}],
        "status": "draft",
        "type": _concept("http://terminology.hl7.org/CodeSystem/claim-type", "professional", "Professional"),
        "use": "claim",
        "patient": {"reference": f"Patient/{PATIENT_ID}"},
        "billablePeriod": {"start": TODAY.isoformat(), "end": TODAY.isoformat()},
        "created": TODAY.isoformat(),
        "enterer": {"reference": f"Practitioner/{PRACTITIONER_ID}"},
        "insurer": {"reference": "Organization/nc-org-payer", "display": "Northwind Health Plan"},
        "provider": {"reference": f"Practitioner/{PRACTITIONER_ID}", "display": "Elena Marsh, MD"},
        "priority": _concept("http://terminology.hl7.org/CodeSystem/processpriority", "normal", "Normal"),
        "careTeam": [{
            "sequence": 1,
            "provider": {"reference": f"Practitioner/{PRACTITIONER_ID}"},
            "responsible": True,
            "role": _concept("http://terminology.hl7.org/CodeSystem/claimcareteamrole", "primary", "Primary provider"),
        }],
        "diagnosis": [{
            "sequence": 1,
            "diagnosisCodeableConcept": _myalgia(),
            "type": [_concept("http://terminology.hl7.org/CodeSystem/ex-diagnosistype", "principal",
                              "Principal Diagnosis")],
        }],
        "procedure": [{"sequence": 1, "date": TODAY.isoformat(), "procedureReference": {"reference": "#p1"}}],
        "insurance": [{"sequence": 1, "focal": True, "coverage": {"reference": "Coverage/nc-cov-1"}}],
        "item": [{
            "sequence": 1,
            "careTeamSequence": [1],
            "diagnosisSequence": [1],
            "procedureSequence": [1],
            "productOrService": _cpt("20560", "Dry needling, 1-2 muscles"),
            "servicedDate": TODAY.isoformat(),
            "locationCodeableConcept": _concept(
                "https://www.cms.gov/Medicare/Coding/place-of-service-codes/Place_of_Service_Code_Set", "11", "Office"),
            "quantity": {"value": 1},
            "unitPrice": usd,
            "net": usd,
            "encounter": [{"reference": f"Encounter/{ENCOUNTER_ID}"}],
        }],
        "total": usd,
    }


def claim_create_request() -> Json:
    """``claim-create``: a draft Claim billing 20560 for its contained Procedure, full prefetch."""
    return {
        "hook": "claim-create",
        "hookInstance": "5f3a1c27-8e0b-4d9a-9c61-2b7e4f0a9d13",
        "context": {
            "userId": f"Practitioner/{PRACTITIONER_ID}",
            "patientId": PATIENT_ID,
            "encounterId": ENCOUNTER_ID,
            "claim": _claim(),
        },
        "prefetch": full_prefetch(),
    }


def claim_create_three_muscles_request() -> Json:
    """``claim-create`` billing 20560 for a Procedure on three muscles: answers one DN-CODE-001 card."""
    body = claim_create_request()
    body["hookInstance"] = "0c9e7d52-31f4-4b8e-a7d6-6e1f2a9b4c85"
    procedure = body["context"]["claim"]["contained"][0]
    procedure["bodySite"].append(body_site(INFRASPINATUS, LEFT, "Left infraspinatus"))
    procedure["note"][0] = {"text": "Dry needling, no injectate. Left upper trapezius, left levator scapulae, "
                                    "left infraspinatus; local twitch responses."}
    return body


@dataclass(frozen=True)
class BenchBody:
    """One benchmark request: which service it calls, how to build it and which rule ids it must fire."""

    label: str
    service_id: str
    build: Callable[[], Json]
    fires: tuple[str, ...] = ()


#: The clean bodies, by service id (the load test ``bench/mixed_load.py`` sends these).
SCENARIOS = {
    "dry-needling-order-sign": order_sign_request,
    "dry-needling-claim-create": claim_create_request,
}

#: Every benchmark body, by short name: the two clean ones (no card) and one that fires a card.
BODIES = {
    "order-sign": BenchBody("order-sign, full prefetch", "dry-needling-order-sign", order_sign_request),
    "claim-create": BenchBody("claim-create, Claim + full prefetch", "dry-needling-claim-create",
                              claim_create_request),
    "claim-create-3-muscles": BenchBody("claim-create, 20560 for 3 muscles", "dry-needling-claim-create",
                                        claim_create_three_muscles_request, ("DN-CODE-001",)),
}
