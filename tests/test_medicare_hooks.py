"""The NCD 30.3.3 rules fire through both hooks, from the coverage, conditions and roles the EHR prefetches."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from flask.testing import FlaskClient

REQUESTS = Path(__file__).resolve().parent.parent / "fixtures" / "requests"
MEDICARE_CLAIM = REQUESTS / "claim-create" / "mcr-session-13-without-kx.json"
ORDER = REQUESTS / "order-sign" / "clean-20560-bilateral-trapezius.json"
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
NUCC = "http://nucc.org/provider-taxonomy"
CERVICALGIA = {"system": ICD10CM, "code": "M54.2", "display": "Cervicalgia"}


def load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def cards_by_rule(client: FlaskClient, service: str, request: dict[str, Any]) -> dict[str, dict[str, Any]]:
    response = client.post(f"/cds-services/{service}", json=request)
    assert response.status_code == 200, response.get_data(as_text=True)
    return {card["extension"]["org.needlecheck.rule-id"]: card for card in response.get_json()["cards"]
            if "extension" in card}


def for_neck_pain(request: dict[str, Any]) -> dict[str, Any]:
    """The request with its low back pain (claim, Procedure and Condition alike) recoded as cervicalgia."""
    text = json.dumps(request).replace('"M54.59"', '"M54.2"').replace("Other low back pain", "Cervicalgia")
    return json.loads(text)


def with_taxonomy(request: dict[str, Any], taxonomy: str) -> dict[str, Any]:
    """The request with the practitioner known only by PractitionerRole code ``taxonomy`` (no degree)."""
    changed = copy.deepcopy(request)
    changed["prefetch"]["practitioner"].pop("qualification", None)
    for entry in changed["prefetch"]["practitionerRoles"]["entry"]:
        if entry["resource"]["resourceType"] == "PractitionerRole":
            entry["resource"]["code"] = [{"coding": [{"system": NUCC, "code": taxonomy}]}]
    return changed


def medicare_order(reason: dict[str, str]) -> dict[str, Any]:
    """An order-sign request for 20560 for the Medicare patient of the claim fixture, with ``reason``."""
    claim = load(MEDICARE_CLAIM)
    order = load(ORDER)
    patient = claim["context"]["patientId"]
    order["context"].update(patientId=patient, userId=claim["context"]["userId"])
    order["context"].pop("encounterId", None)
    for entry in order["context"]["draftOrders"]["entry"]:
        resource = entry["resource"]
        resource["subject"] = {"reference": f"Patient/{patient}"}
        resource["requester"] = {"reference": claim["context"]["userId"]}
        if resource.get("reasonCode"):
            resource["reasonCode"] = [{"coding": [reason]}]
    order["prefetch"] = claim["prefetch"]
    return order


def test_claim_create_for_neck_pain_draws_the_medicare_diagnosis_warning(client: FlaskClient) -> None:
    card = cards_by_rule(client, "dry-needling-claim-create", for_neck_pain(load(MEDICARE_CLAIM)))["DN-MCR-001"]
    assert card["indicator"] == "warning" and "chronic low back pain" in card["summary"]


def test_claim_create_by_a_physical_therapist_draws_the_statutory_exclusion_warning(client: FlaskClient) -> None:
    cards = cards_by_rule(client, "dry-needling-claim-create", with_taxonomy(load(MEDICARE_CLAIM), "225100000X"))
    assert cards["DN-MCR-004"]["indicator"] == "warning" and "GY or GX" in cards["DN-MCR-004"]["summary"]
    assert "DN-MCR-001" not in cards


def test_order_sign_for_neck_pain_draws_the_medicare_diagnosis_warning(client: FlaskClient) -> None:
    cards = cards_by_rule(client, "dry-needling-order-sign", medicare_order(CERVICALGIA))
    assert cards["DN-MCR-001"]["indicator"] == "warning"


def test_order_sign_for_chronic_low_back_pain_draws_no_medicare_warning(client: FlaskClient) -> None:
    low_back = {"system": ICD10CM, "code": "M54.59", "display": "Other low back pain"}
    cards = cards_by_rule(client, "dry-needling-order-sign", medicare_order(low_back))
    assert not [rule for rule, card in cards.items() if rule.startswith("DN-MCR") and card["indicator"] == "warning"]
