"""Which documentation elements an order or Procedure shows, read from real R4B resources."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from needlecheck.mappings.documentation import documentation_elements
from needlecheck.plugin.fhir_documentation import PHRASES, documented_elements
from needlecheck.plugin.fhir_record import PatientRecord
from needlecheck.plugin.fhir_view import FhirView, view_of

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "requests"
CPT = "http://www.ama-assn.org/go/cpt"
SCT = "http://snomed.info/sct"
ICD = "http://hl7.org/fhir/sid/icd-10-cm"
LOW_BACK_PAIN = {"coding": [{"system": ICD, "code": "M54.50", "display": "Low back pain, unspecified"}]}
PROCEDURE_ONLY = {"session-date", "technique", "response-and-complications", "pain-function-outcome"}


def procedure(**extra: Any) -> FhirView:
    return view_of({
        "resourceType": "Procedure", "id": "proc-1", "status": "completed", "subject": {"reference": "Patient/p1"},
        "code": {"coding": [{"system": CPT, "code": "20560"}]}, **extra})


def order(**extra: Any) -> FhirView:
    return view_of({
        "resourceType": "ServiceRequest", "id": "sr-1", "status": "draft", "intent": "order",
        "subject": {"reference": "Patient/p1"}, "code": {"coding": [{"system": CPT, "code": "20560"}]}, **extra})


def condition(cid: str, patient: str = "p1", **extra: Any) -> dict[str, Any]:
    return {"resourceType": "Condition", "id": cid, "subject": {"reference": f"Patient/{patient}"},
            "code": LOW_BACK_PAIN, **extra}


def treatment_consent(cid: str = "consent-1", patient: str = "p1", status: str = "active",
                      scope: str = "treatment") -> dict[str, Any]:
    return {"resourceType": "Consent", "id": cid, "status": status,
            "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": scope}]},
            "category": [{"text": "Consent to dry needling"}], "patient": {"reference": f"Patient/{patient}"},
            "policyRule": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                                       "code": "OPTIN"}]}}


def record_of(*resources: dict[str, Any]) -> PatientRecord:
    record = PatientRecord()
    for resource in resources:
        assert record.add_json(resource) is not None, resource["resourceType"]
    return record


def fully_documented() -> tuple[FhirView, PatientRecord]:
    """A Procedure showing every element this module decides, each through structured FHIR."""
    record = record_of(
        condition("lbp", onsetDateTime="2025-10-01"),
        {"resourceType": "CarePlan", "id": "plan-1", "status": "active", "intent": "plan",
         "subject": {"reference": "Patient/p1"}, "description": "Dry needling weekly for 6 weeks; goal: sit 1 hour"},
        {"resourceType": "Device", "id": "needle-1",
         "deviceName": [{"name": "Filiform needle 0.30 x 50 mm", "type": "user-friendly-name"}]},
        {"resourceType": "Observation", "id": "nprs-1", "status": "final",
         "partOf": [{"reference": "Procedure/proc-1"}], "subject": {"reference": "Patient/p1"},
         "code": {"coding": [{"system": "http://loinc.org", "code": "72514-3"}]}, "valueInteger": 3},
        treatment_consent(),
    )
    resource = procedure(
        performedDateTime="2026-03-02T09:00:00Z",
        reasonReference=[{"reference": "Condition/lbp"}],
        basedOn=[{"reference": "CarePlan/plan-1"}],
        usedReference=[{"reference": "Device/needle-1"}],
        complication=[{"text": "Mild post-needling soreness"}],
        outcome={"text": "Pain reduced"},
        note=[{"text": "Dry needling, no injectate. Taut band with referred pain found in the left quadratus "
                       "lumborum."}],
    )
    return resource, record


def test_a_fully_documented_procedure_shows_every_element_decided_here() -> None:
    resource, record = fully_documented()
    decided_on_the_line = {"muscles-named", "indication", "provider-qualification"}
    assert documented_elements(resource, record) == frozenset(documentation_elements()) - decided_on_the_line


def test_the_element_ids_are_those_of_the_table() -> None:
    assert set(PHRASES) <= set(documentation_elements())


def test_a_bare_procedure_shows_nothing() -> None:
    assert documented_elements(procedure(), PatientRecord()) == frozenset()


def test_the_fixture_procedure_shows_its_note_date_and_the_onset_of_its_diagnosis() -> None:
    request = json.loads((FIXTURES / "claim-create" / "clean-20561-four-muscles-contained.json").read_text())
    claim = view_of(request["context"]["claim"])
    record = PatientRecord(enclosing=claim)
    for entry in request["prefetch"]["conditions"]["entry"]:
        record.add_json(entry["resource"])
    [billed] = claim.contained or []
    assert billed.resource_type == "Procedure"
    # "Dry needling, no injectate." and "Informed consent obtained" in the notes; performedDateTime; M79.18 has an
    # active Condition with an onset.
    assert documented_elements(billed, record, claim.diagnosis or []) == {
        "no-injectate-statement", "informed-consent", "session-date", "symptom-duration"}


@pytest.mark.parametrize(("onset", "shown"), [
    ({}, False),
    ({"onsetDateTime": "2025-11-03"}, True),
    ({"onsetString": "about four months ago"}, True),
    ({"onsetPeriod": {"start": "2025-10"}}, True),
])
def test_symptom_duration_is_the_onset_of_the_indication(onset: dict[str, Any], shown: bool) -> None:
    record = record_of(condition("lbp", **onset))
    found = documented_elements(procedure(reasonReference=[{"reference": "Condition/lbp"}]), record)
    assert ("symptom-duration" in found) is shown


def test_symptom_duration_from_a_claim_diagnosis_or_a_condition_with_the_same_code() -> None:
    record = record_of(condition("lbp", onsetDateTime="2025-10-01"), condition("other", patient="p2",
                                                                             onsetDateTime="2025-10-01"))
    by_reference = view_of({
        "resourceType": "Claim", "status": "draft", "use": "claim", "created": "2026-03-03",
        "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/claim-type", "code": "professional"}]},
        "patient": {"reference": "Patient/p1"}, "provider": {"reference": "Practitioner/u1"},
        "priority": {"coding": [{"code": "normal"}]},
        "insurance": [{"sequence": 1, "focal": True, "coverage": {"reference": "Coverage/cov1"}}],
        "diagnosis": [{"sequence": 1, "diagnosisReference": {"reference": "Condition/lbp"}}]})
    assert "symptom-duration" in documented_elements(None, record, by_reference.diagnosis or [])
    assert "symptom-duration" in documented_elements(procedure(reasonCode=[LOW_BACK_PAIN]), record)
    # Only another patient's Condition has an onset for the code: that says nothing about this patient.
    others_only = record_of(condition("other", patient="p2", onsetDateTime="2025-10-01"))
    assert "symptom-duration" not in documented_elements(procedure(reasonCode=[LOW_BACK_PAIN]), others_only)


def test_a_generated_narrative_is_not_a_statement_but_an_additional_one_is() -> None:
    div = '<div xmlns="http://www.w3.org/1999/xhtml">Needle insertion(s) without injection(s); 1 or 2 muscle(s)</div>'
    generated = procedure(text={"status": "generated", "div": div})
    written = procedure(text={"status": "additional", "div": div})
    assert "no-injectate-statement" not in documented_elements(generated, PatientRecord())
    assert "no-injectate-statement" in documented_elements(written, PatientRecord())


def test_plain_text_reports_are_read_and_pdfs_are_not() -> None:
    def report(content_type: str) -> dict[str, Any]:
        data = base64.b64encode(b"Local twitch response obtained; tolerated well. Consent signed.").decode()
        return {"resourceType": "DocumentReference", "id": content_type.replace("/", "-"), "status": "current",
                "content": [{"attachment": {"contentType": content_type, "data": data}}]}

    record = record_of(report("text/plain"), report("application/pdf"))
    read = documented_elements(procedure(report=[{"reference": "DocumentReference/text-plain"}]), record)
    unread = documented_elements(procedure(report=[{"reference": "DocumentReference/application-pdf"}]), record)
    assert {"response-and-complications", "informed-consent"} <= read
    assert unread == frozenset()


def test_plan_of_care_through_the_order_the_procedure_is_based_on() -> None:
    record = record_of(
        order(id="planned", basedOn=[{"reference": "CarePlan/plan-1"}]).json,
        order(id="unplanned").json,
    )
    assert "plan-of-care" in documented_elements(procedure(basedOn=[{"reference": "ServiceRequest/planned"}]), record)
    assert "plan-of-care" not in documented_elements(procedure(basedOn=[{"reference": "ServiceRequest/unplanned"}]),
                                                     record)


@pytest.mark.parametrize(("consent", "shown"), [
    (treatment_consent(), True),
    (treatment_consent(patient="p2"), False),
    (treatment_consent(status="inactive"), False),
    (treatment_consent(scope="patient-privacy"), False),
])
def test_informed_consent_is_an_active_treatment_consent_of_the_patient(consent: dict[str, Any], shown: bool) -> None:
    assert ("informed-consent" in documented_elements(procedure(), record_of(consent))) is shown


def test_an_outcome_observation_must_be_part_of_this_procedure() -> None:
    def score(part_of: str) -> dict[str, Any]:
        return {"resourceType": "Observation", "id": "s", "status": "final", "partOf": [{"reference": part_of}],
                "code": {"coding": [{"system": "http://loinc.org", "code": "72514-3"}]}, "valueInteger": 2}

    assert "pain-function-outcome" in documented_elements(procedure(), record_of(score("Procedure/proc-1")))
    assert "pain-function-outcome" not in documented_elements(procedure(), record_of(score("Procedure/proc-2")))


def test_a_needle_named_in_used_code_is_technique_but_not_an_injectate_statement() -> None:
    found = documented_elements(procedure(usedCode=[{"text": "Filiform needle 0.25 x 40 mm"}]), PatientRecord())
    assert found == {"technique"}


def test_an_order_shows_findings_from_its_supporting_observation_and_never_procedure_elements() -> None:
    record = record_of({"resourceType": "Observation", "id": "tp", "status": "final",
                        "code": {"text": "Myofascial trigger point examination"},
                        "valueString": "Active trigger point, right upper trapezius"})
    found = documented_elements(order(supportingInfo=[{"reference": "Observation/tp"}],
                                      occurrenceDateTime="2026-03-02", note=[{"text": "Depth 2 cm, tolerated"}]),
                                record)
    assert "trigger-point-findings" in found
    assert not found & PROCEDURE_ONLY
