"""Who pays, who furnishes and where, read from the fixture record's real FHIR resources."""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any

from needlecheck.plugin.fhir_input import claim_create_context, condition_facts, order_sign_context
from needlecheck.plugin.fhir_parties import coverage_facts, order_performers, state_at
from needlecheck.plugin.fhir_record import PatientRecord
from needlecheck.plugin.fhir_view import view_of
from tests.support.fixtures_fhir import FHIR_BUNDLE_PATH, read_bundle

CPT = "http://www.ama-assn.org/go/cpt"
SOPT = "urn:oid:2.16.840.1.113883.3.221.5"
NUCC = "http://nucc.org/provider-taxonomy"
PT_TAXONOMY = "225100000X"


def server_resources() -> dict[str, dict[str, Any]]:
    """The fixture FHIR server's resources by ``Type/id``."""
    bundle = read_bundle(FHIR_BUNDLE_PATH)
    return {f"{e['resource']['resourceType']}/{e['resource']['id']}": e["resource"] for e in bundle["entry"]}


def record_of(*keys: str, extra: tuple[dict[str, Any], ...] = ()) -> PatientRecord:
    """A record holding the named fixture resources (as prefetch would) and ``extra`` ones."""
    resources = server_resources()
    record = PatientRecord()
    for key in keys:
        record.add_json(copy.deepcopy(resources[key]))
    for resource in extra:
        record.add_json(resource)
    return record


def test_the_patients_active_coverage_names_its_payor_organization() -> None:
    record = record_of("Coverage/nc-cov-1", "Coverage/nc-cov-2", "Organization/nc-org-payer")
    facts = coverage_facts(record, "nc-pat-1")
    assert facts is not None and facts.reference == "Coverage/nc-cov-1"
    assert facts.payor_names == ("Northwind Health Plan",)
    assert ("https://ehr.example.org/identifiers/payer-id", "NWH01") in facts.payor_identifiers


def test_no_coverage_of_this_patient_means_none() -> None:
    assert coverage_facts(record_of("Coverage/nc-cov-2"), "nc-pat-1") is None


def test_a_claims_focal_insurance_wins_over_other_coverage() -> None:
    medicare = {"resourceType": "Coverage", "id": "mcr", "status": "active",
                "beneficiary": {"reference": "Patient/nc-pat-1"}, "payor": [{"display": "Medicare Part B"}],
                "type": {"coding": [{"system": SOPT, "code": "121"}]}}
    record = record_of("Coverage/nc-cov-1", extra=(medicare,))
    claim = view_of({
        "resourceType": "Claim", "status": "draft", "use": "claim", "created": "2026-03-03",
        "type": {"coding": [{"code": "professional"}]}, "patient": {"reference": "Patient/nc-pat-1"},
        "provider": {"reference": "Practitioner/nc-prac-1"}, "priority": {"coding": [{"code": "normal"}]},
        "insurance": [{"sequence": 1, "focal": False, "coverage": {"reference": "Coverage/nc-cov-1"}},
                      {"sequence": 2, "focal": True, "coverage": {"reference": "Coverage/mcr"}}]})
    facts = coverage_facts(record, "nc-pat-1", claim)
    assert facts is not None and facts.reference == "Coverage/mcr"
    assert [c.code for c in facts.type_codes] == ["121"] and facts.payor_names == ("Medicare Part B",)


def test_a_practitioner_carries_its_qualification_and_its_roles_taxonomy() -> None:
    record = record_of("Practitioner/nc-prac-1", "PractitionerRole/nc-prole-1", "Organization/nc-org-clinic")
    order = view_of({"resourceType": "Bundle", "type": "collection", "entry": [{"resource": {
        "resourceType": "ServiceRequest", "id": "sr", "status": "draft", "intent": "order",
        "subject": {"reference": "Patient/nc-pat-1"}, "code": {"coding": [{"system": CPT, "code": "20560"}]}}}]})
    context = order_sign_context("nc-pat-1", order, record, dt.date(2026, 3, 2), signer="Practitioner/nc-prac-1")
    [line] = context.lines
    [performer] = line.performers
    assert performer.reference == "Practitioner/nc-prac-1"
    assert {c.code for c in performer.codes} == {"MD", "208100000X"}
    # The signer's role works at the clinic, whose address is in Colorado.
    assert line.service_state == "CO"
    assert line.is_procedure_record is False


def test_an_orders_named_performer_wins_over_the_signer() -> None:
    therapist = {"resourceType": "PractitionerRole", "id": "pt", "practitioner": {"reference": "Practitioner/x"},
                 "code": [{"coding": [{"system": NUCC, "code": PT_TAXONOMY}]}]}
    record = record_of("Practitioner/nc-prac-1", extra=(therapist,))
    order = view_of({"resourceType": "Bundle", "type": "collection", "entry": [{"resource": {
        "resourceType": "ServiceRequest", "id": "sr", "status": "draft", "intent": "order",
        "subject": {"reference": "Patient/nc-pat-1"}, "performer": [{"reference": "PractitionerRole/pt"}],
        "code": {"coding": [{"system": CPT, "code": "20560"}]}}}]}).entry[0].resource
    [performer] = order_performers(order, record, "Practitioner/nc-prac-1")
    assert [c.code for c in performer.codes] == [PT_TAXONOMY]


def test_claim_line_performer_comes_from_the_care_team_qualification_and_state_from_the_facility() -> None:
    record = PatientRecord()
    claim = view_of({
        "resourceType": "Claim", "id": "c1", "status": "draft", "use": "claim", "created": "2026-03-03",
        "type": {"coding": [{"code": "professional"}]}, "patient": {"reference": "Patient/nc-pat-1"},
        "provider": {"reference": "Organization/org"}, "priority": {"coding": [{"code": "normal"}]},
        "contained": [{"resourceType": "Location", "id": "loc", "address": {"state": "ca"}}],
        "facility": {"reference": "#loc"},
        "careTeam": [{"sequence": 1, "provider": {"reference": "Practitioner/unknown"},
                      "qualification": {"coding": [{"system": NUCC, "code": PT_TAXONOMY}]}}],
        "insurance": [{"sequence": 1, "focal": True, "coverage": {"reference": "Coverage/none"}}],
        "item": [{"sequence": 1, "careTeamSequence": [1], "servicedDate": "2026-03-02",
                  "productOrService": {"coding": [{"system": CPT, "code": "97140"}], "text": "Dry needling"}}]})
    context = claim_create_context("nc-pat-1", claim, record, dt.date(2026, 3, 3))
    [line] = context.lines
    assert [c.code for p in line.performers for c in p.codes] == [PT_TAXONOMY]
    assert line.service_state == "CA"
    assert line.described_as == ("Dry needling",)
    assert context.coverage is None


def test_free_text_states_are_not_guessed() -> None:
    record = record_of(extra=({"resourceType": "Location", "id": "l", "address": {"state": "California"}},))
    assert state_at("Location/l", record) is None


def test_conditions_keep_onset_and_drop_refuted_and_other_patients() -> None:
    refuted = {"resourceType": "Condition", "id": "r", "subject": {"reference": "Patient/nc-pat-1"},
               "verificationStatus": {"coding": [{"code": "refuted"}]}, "code": {"text": "x"}}
    period = {"resourceType": "Condition", "id": "p", "subject": {"reference": "Patient/nc-pat-1"},
              "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "M54.50"}]},
              "onsetPeriod": {"start": "2025-11-01"}}
    record = record_of("Condition/nc-cond-m7918", "Condition/nc-cond-p2-m5450", extra=(refuted, period))
    facts = {f.reference: f for f in condition_facts(record, "nc-pat-1")}
    assert set(facts) == {"Condition/nc-cond-m7918", "Condition/p"}
    assert facts["Condition/p"].onset == dt.date(2025, 11, 1)
    assert facts["Condition/nc-cond-m7918"].clinical_status == "active"
    assert facts["Condition/nc-cond-m7918"].onset is not None


def test_what_a_record_worked_out_is_worked_out_again_once_the_record_changes() -> None:
    # Performers, states and roles are worked out once per record (every line asks); a resource added later
    # (the FHIR server's answer after the prefetch) must still count.
    record = record_of("Practitioner/nc-prac-1")
    signer = "Practitioner/nc-prac-1"
    before = order_performers(view_of(ORDER), record, signer)
    assert {c.code for p in before for c in p.codes} == {"MD"}
    assert state_at(signer, record) is None
    record.add_json(copy.deepcopy(server_resources()["PractitionerRole/nc-prole-1"]))
    record.add_json(copy.deepcopy(server_resources()["Organization/nc-org-clinic"]))
    after = order_performers(view_of(ORDER), record, signer)
    assert {c.code for p in after for c in p.codes} == {"MD", "208100000X"}
    assert state_at(signer, record) == "CO"


ORDER: dict[str, Any] = {"resourceType": "ServiceRequest", "id": "sr", "status": "draft", "intent": "order",
                         "subject": {"reference": "Patient/nc-pat-1"},
                         "code": {"coding": [{"system": CPT, "code": "20560"}]}}
