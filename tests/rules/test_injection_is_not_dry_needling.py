"""DN-CODE-003: an injectate makes it a trigger-point injection."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from needlecheck.plugin.engine import evaluate
from needlecheck.plugin.fhir_input import claim_create_context
from needlecheck.plugin.fhir_record import PatientRecord
from needlecheck.plugin.fhir_view import view_of
from needlecheck.plugin.findings import CodeChange, Finding, Severity
from needlecheck.plugin.rules.injection_is_not_dry_needling import check_injection_is_not_dry_needling as check
from tests.support.builders import ERECTOR_SPINAE, context, line, site, three_muscles, two_muscles


def test_lidocaine_on_two_muscles_suggests_20552() -> None:
    [finding] = check(context(line("20560", *two_muscles(), substances=("lidocaine",), sequence=1)))
    assert finding.rule_id == "DN-CODE-003"
    assert finding.fix == CodeChange("Claim/c1", "20560", "20552", 1)
    assert "lidocaine" in finding.detail and finding.summary == "Bill 20552, not 20560: an injection is recorded"


def test_three_muscles_suggest_20553() -> None:
    [finding] = check(context(line("20561", *three_muscles(), substances=("triamcinolone",))))
    assert finding.fix is not None and finding.fix.to_code == "20553"


def test_no_substance_is_fine() -> None:
    assert check(context(line("20560", *two_muscles()))) == []


def test_uncountable_sites_report_without_a_code() -> None:
    [finding] = check(context(line("20560", site(ERECTOR_SPINAE), substances=("lidocaine",))))
    assert finding.fix is None


def test_a_drug_whose_route_is_unknown_is_a_question_without_a_change() -> None:
    [finding] = check(context(line("20560", *two_muscles(), route_unknown=("lidocaine",), sequence=1)))
    assert finding.severity is Severity.INFO and finding.fix is None
    assert "lidocaine" in finding.detail and finding.summary.startswith("Confirm nothing was injected")


# ------------------------------------------------------------------ from FHIR, through the engine

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
SNOMED = "http://snomed.info/sct"
CLAIM = Path(__file__).resolve().parents[2] / "fixtures/requests/claim-create/code003-injectate-lidocaine.json"
CHLORHEXIDINE_PREP = {"coding": [{"system": SNOMED, "code": "373568007", "display": "Chlorhexidine (substance)"}],
                      "text": "Chlorhexidine 2% skin prep"}
ESTIM_DEVICE = {"coding": [{"system": "https://ehr.example.org/devices", "code": "ESTIM-2",
                            "display": "Electrical stimulation unit"}]}
LIDOCAINE_INGREDIENT = {"coding": [{"system": RXNORM, "code": "6387", "display": "lidocaine"}]}
IM_ROUTE = {"coding": [{"system": SNOMED, "code": "78421000", "display": "Intramuscular route (qualifier value)"}]}


def code003_findings(used: dict[str, Any], *contained: dict[str, Any]) -> list[Finding]:
    """DN-CODE-003's findings for the lidocaine fixture's 20560 claim with the Procedure's usedCode/Reference
    replaced by ``used`` and ``contained`` resources added to the claim."""
    body = json.loads(CLAIM.read_text(encoding="utf-8"))
    claim = body["context"]["claim"]
    procedure = claim["contained"][0]
    procedure.pop("usedCode", None)
    procedure.pop("note", None)
    procedure.update(used)
    claim["contained"] += list(contained)
    context = claim_create_context("nc-pat-1", view_of(claim), PatientRecord(), dt.date(2026, 5, 1))
    return [f for f in evaluate(context) if f.rule_id == "DN-CODE-003"]


@pytest.mark.parametrize("used", [CHLORHEXIDINE_PREP, ESTIM_DEVICE], ids=["chlorhexidine-prep", "e-stim-device"])
def test_a_skin_prep_or_a_device_is_no_injectate(used: dict[str, Any]) -> None:
    assert code003_findings({"usedCode": [used]}) == []


def test_a_drug_ingredient_alone_asks_and_recommends_nothing() -> None:
    [finding] = code003_findings({"usedCode": [LIDOCAINE_INGREDIENT]})
    assert finding.severity is Severity.INFO and finding.fix is None


def test_an_administration_for_the_procedure_proves_the_injection() -> None:
    administration = {"resourceType": "MedicationAdministration", "id": "ma1", "status": "completed",
                      "partOf": [{"reference": "#p1"}], "medicationCodeableConcept": LIDOCAINE_INGREDIENT,
                      "subject": {"reference": "Patient/nc-pat-1"}, "effectiveDateTime": "2026-03-02",
                      "dosage": {"route": IM_ROUTE}}
    [finding] = code003_findings({}, administration)
    assert finding.severity is Severity.WARNING and finding.fix is not None and finding.fix.to_code == "20552"


def test_an_administration_on_the_skin_is_no_injection() -> None:
    topical = {"coding": [{"system": SNOMED, "code": "6064005", "display": "Topical route"}]}
    administration = {"resourceType": "MedicationAdministration", "id": "ma1", "status": "completed",
                      "medicationCodeableConcept": {"text": "Chlorhexidine gluconate 2%"},
                      "subject": {"reference": "Patient/nc-pat-1"}, "effectiveDateTime": "2026-03-02",
                      "dosage": {"route": topical}}
    assert code003_findings({"usedReference": [{"reference": "#ma1"}]}, administration) == []


def test_a_product_for_injection_proves_the_injection() -> None:
    [finding] = code003_findings({"usedCode": [{**LIDOCAINE_INGREDIENT, "text": "Lidocaine HCl 1% injection"}]})
    assert finding.severity is Severity.WARNING and finding.fix is not None and finding.fix.to_code == "20552"


def test_an_administration_without_a_route_is_a_question() -> None:
    administration = {"resourceType": "MedicationAdministration", "id": "ma1", "status": "completed",
                      "partOf": [{"reference": "#p1"}], "medicationCodeableConcept": {"text": "Chlorhexidine 2%"},
                      "subject": {"reference": "Patient/nc-pat-1"}, "effectiveDateTime": "2026-03-02"}
    [finding] = code003_findings({}, administration)
    assert finding.severity is Severity.INFO and finding.fix is None


def test_unverified_muscle_codes_report_without_a_code() -> None:
    # Gastrocnemius 181700004 is a partial (UBERON) row: it may not decide 20552 against 20553.
    [finding] = check(context(line("20560", site("181700004", "7771000"), substances=("lidocaine",))))
    assert finding.fix is None
