"""From FHIR R4 resources to the billing context: references, injectates, diagnoses and other patients."""

from __future__ import annotations

import datetime as dt
from typing import Any

from needlecheck.plugin.fhir_injectates import used_drugs
from needlecheck.plugin.fhir_input import claim_create_context, prior_services
from needlecheck.plugin.fhir_record import PatientRecord
from needlecheck.plugin.fhir_view import FhirView, view_of

CPT = "http://www.ama-assn.org/go/cpt"
SCT = "http://snomed.info/sct"


def procedure(pid: str, patient: str = "p1", **extra: Any) -> FhirView:
    return view_of({
        "resourceType": "Procedure", "id": pid, "status": "completed", "subject": {"reference": f"Patient/{patient}"},
        "code": {"coding": [{"system": CPT, "code": "20560"}]}, "performedDateTime": "2026-03-02", **extra})


def test_history_of_another_patient_is_ignored() -> None:
    record = PatientRecord()
    for resource in (procedure("a"), procedure("b", patient="p2"), procedure("c", status="entered-in-error")):
        record.add_json(resource.json)
    [service] = prior_services(record, "p1")
    assert (service.reference, service.code, service.date_of_service) == ("Procedure/a", "20560", dt.date(2026, 3, 2))


def test_history_dates_come_from_period_starts_and_bad_values_are_unknown() -> None:
    record = PatientRecord()
    record.add_json({"resourceType": "Procedure", "id": "x", "subject": {"reference": "Patient/p1"},
                     "code": {"coding": [{"system": CPT, "code": "20561"}]},
                     "performedPeriod": {"start": "2026-02-20T09:10:00Z"}})
    record.add_json({"resourceType": "Procedure", "id": "y", "subject": {"reference": "Patient/p1"},
                     "code": {"coding": [{"system": CPT, "code": "20561"}]}, "performedDateTime": "2026-02"})
    assert [s.date_of_service for s in prior_services(record, "p1")] == [dt.date(2026, 2, 20), None]


def test_needles_are_not_injectates_and_a_drug_alone_does_not_say_how_it_was_given() -> None:
    record = PatientRecord()
    rxnorm = "http://www.nlm.nih.gov/research/umls/rxnorm"
    needle = procedure("n", usedCode=[{"coding": [{"system": SCT, "code": "79068005"}], "text": "Filiform needle"}])
    drug = procedure("d", usedCode=[{"coding": [{"system": rxnorm, "code": "6387", "display": "lidocaine"}]}])
    for_injection = procedure("i", usedCode=[{"coding": [{"system": rxnorm, "code": "6387", "display": "lidocaine"}],
                                              "text": "Lidocaine 1% solution for injection"}])
    device = procedure("v", usedReference=[{"reference": "Device/1"}])
    assert used_drugs(needle, record) == used_drugs(device, record) == used_drugs(procedure("none"), record)
    assert (used_drugs(drug, record).injected, used_drugs(drug, record).route_unknown) == ((), ("lidocaine",))
    assert used_drugs(for_injection, record).injected == ("Lidocaine 1% solution for injection",)


def test_claim_line_takes_its_procedure_diagnosis_and_date() -> None:
    claim = view_of({
        "resourceType": "Claim", "id": "c1", "status": "draft", "use": "claim", "created": "2026-03-03",
        "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/claim-type", "code": "professional"}]},
        "patient": {"reference": "Patient/p1"}, "provider": {"reference": "Practitioner/u1"},
        "priority": {"coding": [{"code": "normal"}]},
        "insurance": [{"sequence": 1, "focal": True, "coverage": {"reference": "Coverage/cov1"}}],
        "contained": [procedure("p", bodySite=[{"coding": [{"system": SCT, "code": "31764008"}]}]).json],
        "procedure": [{"sequence": 1, "procedureReference": {"reference": "#p"}}],
        "diagnosis": [{"sequence": 1, "diagnosisCodeableConcept": {
            "coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "M79.18"}]}}],
        "item": [{"sequence": 1, "productOrService": {"coding": [{"system": CPT, "code": "20560"}]},
                  "procedureSequence": [1], "diagnosisSequence": [1], "quantity": {"value": 2}}],
    })
    context = claim_create_context("p1", claim, PatientRecord(), dt.date(2026, 3, 3))
    [line] = context.lines
    assert line.date_of_service == dt.date(2026, 3, 2)
    assert line.units == 2
    assert [c.code for c in line.indications] == ["M79.18"]
    assert line.body_sites[0].snomed_codes == ("31764008",)
