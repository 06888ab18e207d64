"""The HTTP interface: discovery, errors as OperationOutcomes, hook validation, feedback."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from needlecheck.cds_hooks.app import create_app
from needlecheck.cds_hooks.settings import Settings
from needlecheck.cds_hooks.store import Store
from tests.support.card_conformance import assert_conformant_response

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "requests"
ORDER_SIGN = "/cds-services/dry-needling-order-sign"
CLAIM_CREATE = "/cds-services/dry-needling-claim-create"


def load(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def outcome_message(response: Any) -> str:
    body = response.get_json()
    assert body["resourceType"] == "OperationOutcome"
    return str(body["issue"][0]["diagnostics"])


def test_discovery_lists_both_services_with_prefetch(client: FlaskClient) -> None:
    services = {s["id"]: s for s in client.get("/cds-services").get_json()["services"]}
    assert {s["hook"] for s in services.values()} == {"order-sign", "claim-create"}
    for service in services.values():
        assert service["title"] and service["description"]
        history = service["prefetch"]["priorProcedures"]
        # Every CPT value carries its system, or a 20561 in another code system would match.
        codes = history.split("code=", 1)[1].split(",")
        spellings = ("http://www.ama-assn.org/go/cpt|", "urn:oid:2.16.840.1.113883.6.12|")
        assert all(code.startswith(spellings) for code in codes)
        # EHRs that record CPT by its OID keep their earlier sessions visible to the history search.
        assert {code.split("|")[0] + "|" for code in codes} == set(spellings)
        assert set(service["prefetch"]) == {"patient", "coverage", "conditions", "encounter", "practitioner",
                                            "practitionerRoles", "priorProcedures"}


def test_order_sign_answers_with_cards(client: FlaskClient) -> None:
    response = client.post(ORDER_SIGN, json=load("order-sign/code001-20561-two-muscles.json"))
    assert response.status_code == 200
    [card] = [c for c in response.get_json()["cards"] if c["indicator"] == "warning"]
    assert card["extension"]["org.needlecheck.rule-id"] == "DN-CODE-001"
    [action] = card["suggestions"][0]["actions"]
    assert action["type"] == "update"
    assert action["resource"]["code"]["coding"][0]["code"] == "20560"


def test_a_non_dry_needling_order_gets_no_cards(client: FlaskClient) -> None:
    response = client.post(ORDER_SIGN, json=load("order-sign/non-dn-order-only.json"))
    assert response.get_json() == {"cards": []}


@pytest.mark.parametrize(("mutate", "field"), [
    (lambda b: b.pop("hook"), "hook"),
    (lambda b: b.pop("hookInstance"), "hookInstance"),
    (lambda b: b.pop("context"), "context"),
    (lambda b: b.update(context=[]), "context"),
    (lambda b: b["context"].pop("patientId"), "context.patientId"),
    (lambda b: b["context"].pop("userId"), "context.userId"),
    (lambda b: b["context"].pop("draftOrders"), "context.draftOrders"),
    (lambda b: b.update(hook="claim-create"), "hook"),
    (lambda b: b["context"].update(draftOrders={"resourceType": "Claim"}), "context.draftOrders"),
    (lambda b: b["context"]["draftOrders"].update(type="not-a-type", entry="x"), "context.draftOrders"),
    (lambda b: b.update(fhirAuthorization={"access_token": "t"}), "fhirServer"),
    (lambda b: b.update(fhirServer="ftp://x", fhirAuthorization={"access_token": "t"}), "fhirServer"),
    (lambda b: b.update(prefetch=[1]), "prefetch"),
])
def test_malformed_requests_get_400_naming_the_field(client: FlaskClient, mutate: Any, field: str) -> None:
    body = load("order-sign/clean-20560-bilateral-trapezius.json")
    mutate(body)
    response = client.post(ORDER_SIGN, json=body)
    assert response.status_code == 400
    assert field in outcome_message(response)


def test_invalid_fhir_in_the_claim_is_a_400(client: FlaskClient) -> None:
    body = load("claim-create/clean-20561-four-muscles-contained.json")
    body["context"]["claim"]["item"][0]["quantity"] = {"value": "many"}
    response = client.post(CLAIM_CREATE, json=body)
    assert response.status_code == 400
    assert "context.claim" in outcome_message(response)


@pytest.mark.parametrize("payload", [b"{not json", b"", b"[1, 2]", b"null", b"\xff\xfe", b"[" * 5000])
def test_garbage_bodies_are_400_never_500(client: FlaskClient, payload: bytes) -> None:
    response = client.post(ORDER_SIGN, data=payload, content_type="application/json")
    assert response.status_code == 400
    assert outcome_message(response)


def test_unknown_service_is_404(client: FlaskClient) -> None:
    response = client.post("/cds-services/no-such-service", json={})
    assert response.status_code == 404
    assert "no-such-service" in outcome_message(response)


def test_wrong_method_is_an_operation_outcome(client: FlaskClient) -> None:
    response = client.get(ORDER_SIGN)
    assert response.status_code == 405
    assert outcome_message(response)


def test_oversized_body_is_413(client: FlaskClient) -> None:
    response = client.post(ORDER_SIGN, data=b"{" + b" " * 3_000_000 + b"}", content_type="application/json")
    assert response.status_code == 413
    assert outcome_message(response)


def test_health(client: FlaskClient) -> None:
    assert client.get("/healthz").get_json() == {"status": "ok"}


FEEDBACK = {"feedback": [{
    "card": "a2a13d73-aa73-5bdc-b527-5a313b674221", "outcome": "accepted",
    "acceptedSuggestions": [{"id": "6c92c176-cb5e-5409-aefe-9954fb2f2b5a"}],
    "outcomeTimestamp": "2026-03-02T10:00:00Z",
}, {
    "card": "744c8a4b-6130-5062-b4f1-d392365452f8", "outcome": "overridden",
    "overrideReason": {"reason": {"system": "urn:needlecheck:override-reason", "code": "documented-elsewhere",
                                  "display": "Documented elsewhere"}, "userComment": "see note"},
    "outcomeTimestamp": "2026-03-02T10:01:00Z",
}]}


def test_feedback_is_stored_once(client: FlaskClient, app: Any) -> None:
    first = client.post(f"{ORDER_SIGN}/feedback", json=FEEDBACK)
    again = client.post(f"{ORDER_SIGN}/feedback", json=FEEDBACK)
    assert first.status_code == again.status_code == 200
    assert first.get_json() == {"received": 2, "stored": 2}
    assert again.get_json() == {"received": 2, "stored": 0}
    store: Store = app.extensions["needlecheck.store"]
    assert store.count_feedback("dry-needling-order-sign") == 2


@pytest.mark.parametrize(("body", "field"), [
    ({}, "feedback"),
    ({"feedback": []}, "feedback"),
    ({"feedback": [{"outcome": "accepted"}]}, "feedback[1].card"),
    ({"feedback": [{"card": "c", "outcome": "maybe", "outcomeTimestamp": "2026-03-02T10:00:00Z"}]},
     "feedback[1].outcome"),
    ({"feedback": [{"card": "c", "outcome": "accepted", "outcomeTimestamp": "2026-03-02T10:00:00Z"}]},
     "acceptedSuggestions"),
    ({"feedback": [{"card": "c", "outcome": "overridden", "outcomeTimestamp": "yesterday"}]}, "outcomeTimestamp"),
    ({"feedback": [{"card": "c", "outcome": "overridden", "outcomeTimestamp": "2026-03-02T10:00:00"}]},
     "outcomeTimestamp"),
    ({"feedback": [{"card": "c", "outcome": "overridden", "overrideReason": {},
                    "outcomeTimestamp": "2026-03-02T10:00:00Z"}]}, "overrideReason"),
])
def test_malformed_feedback_is_400_and_nothing_is_stored(client: FlaskClient, app: Any, body: dict[str, Any],
                                                         field: str) -> None:
    valid_first = {"feedback": FEEDBACK["feedback"][:1] + body.get("feedback", [])} if body.get("feedback") else body
    response = client.post(f"{ORDER_SIGN}/feedback", json=valid_first)
    assert response.status_code == 400
    assert field in outcome_message(response)
    assert app.extensions["needlecheck.store"].count_feedback() == 0


def test_feedback_for_an_unknown_service_is_404(client: FlaskClient) -> None:
    assert client.post("/cds-services/nope/feedback", json=FEEDBACK).status_code == 404


def test_checks_without_their_data_sets_share_one_info_card(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEEDLECHECK_DATASETS_DIR", str(tmp_path / "none"))
    application = create_app(Settings(data_dir=tmp_path / "data", allow_http=True))
    client = application.test_client()
    claim = load("claim-create/mcr-session-13-without-kx.json")  # Medicare, whose edits these are
    # Two units of 20561: 20560 has a shipped MUE of 1 (FE-07) that decides without the table; 20561 has none.
    item = claim["context"]["claim"]["item"][0]
    item["quantity"] = {"value": 2}
    item["productOrService"]["coding"][0]["code"] = "20561"
    response = client.post("/cds-services/dry-needling-claim-create", json=claim)
    cards = response.get_json()["cards"]
    [unchecked] = [c for c in cards if c["indicator"] == "info" and "extension" not in c]
    # Two units: the MUE table would decide; no other service that date: no PTP edit could apply.
    assert "ncci-mue-practitioner" in unchecked["detail"] and "ncci-ptp-practitioner" not in unchecked["detail"]
    assert not any(c.get("extension", {}).get("org.needlecheck.rule-id", "").startswith("DN-NCCI") for c in cards)
    assert_conformant_response(response.get_json())
    # Issue 9, card economy: where the missing files decide nothing, they are no card.
    one_unit = client.post(ORDER_SIGN, json=load("order-sign/code001-20561-two-muscles.json")).get_json()["cards"]
    assert [c for c in one_unit if "extension" not in c] == []
    application.extensions["needlecheck.pool"].shutdown(wait=False)
