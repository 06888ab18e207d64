"""Issue 9, finding 10: the scope-of-practice check gets its data from prefetch or the FHIR server, or says
it could not run.

An order-sign request names a performer (a physical therapist) and a location (Sacramento, CA) that no
prefetch key carries: the service must read them from the real FHIR server (sekmet, loaded with the shared
fixture Bundle plus these three resources), with the EHR's prefetch and without it, and say "not checked"
when neither can supply them.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from tests.support.fhir_server import FhirTestServer
from tests.support.fixtures_fhir import FHIR_BUNDLE_PATH, read_bundle

REQUESTS = Path(__file__).resolve().parent.parent / "fixtures" / "requests"
ORDER = REQUESTS / "order-sign" / "clean-20560-bilateral-trapezius.json"
SERVICE = "/cds-services/dry-needling-order-sign"
NUCC = "http://nucc.org/provider-taxonomy"
THERAPIST = {"resourceType": "Practitioner", "id": "nc-prac-pt-ca", "name": [{"family": "Reyes", "given": ["Ana"]}]}
THERAPIST_ROLE = {
    "resourceType": "PractitionerRole", "id": "nc-prole-pt-ca", "active": True,
    "practitioner": {"reference": "Practitioner/nc-prac-pt-ca"},
    "code": [{"coding": [{"system": NUCC, "code": "225100000X", "display": "Physical Therapist"}]}],
}
SACRAMENTO = {"resourceType": "Location", "id": "nc-loc-sacramento", "name": "Sacramento clinic",
              "address": {"city": "Sacramento", "state": "CA", "postalCode": "95814", "country": "US"}}


def put_entry(resource: dict[str, Any]) -> dict[str, Any]:
    return {"resource": resource, "request": {"method": "PUT", "url": f"{resource['resourceType']}/{resource['id']}"}}


@pytest.fixture
def server() -> Iterator[FhirTestServer]:
    """The shared record plus a physical therapist and a California location."""
    with FhirTestServer() as fhir:
        fhir.load(read_bundle(FHIR_BUNDLE_PATH))
        fhir.load({"resourceType": "Bundle", "type": "transaction",
                   "entry": [put_entry(r) for r in (THERAPIST, THERAPIST_ROLE, SACRAMENTO)]})
        yield fhir


def therapist_order(prefetch: bool) -> dict[str, Any]:
    """The clean order, to be performed by the therapist in Sacramento; with the EHR's prefetch or none."""
    body: dict[str, Any] = json.loads(ORDER.read_text(encoding="utf-8"))
    order = body["context"]["draftOrders"]["entry"][0]["resource"]
    order["performer"] = [{"reference": "Practitioner/nc-prac-pt-ca"}]
    order["locationReference"] = [{"reference": "Location/nc-loc-sacramento"}]
    body["context"].pop("encounterId")
    if not prefetch:
        body.pop("prefetch")
    return body


def against(body: dict[str, Any], fhir: FhirTestServer) -> dict[str, Any]:
    pointed = copy.deepcopy(body)
    pointed["fhirServer"] = fhir.base_url
    pointed["fhirAuthorization"] = {"access_token": fhir.auth_headers["Authorization"].split(" ", 1)[1],
                                    "token_type": "Bearer", "expires_in": 300, "scope": "patient/*.read",
                                    "subject": "needlecheck"}
    return pointed


def cards(client: FlaskClient, body: dict[str, Any]) -> list[dict[str, Any]]:
    response = client.post(SERVICE, json=body)
    assert response.status_code == 200, response.get_data(as_text=True)
    found: list[dict[str, Any]] = response.get_json()["cards"]
    return found


def scope_cards(found: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [card for card in found if card.get("extension", {}).get("org.needlecheck.rule-id") == "DN-SCOPE-001"]


@pytest.mark.parametrize("prefetch", [True, False], ids=["with-prefetch", "without-prefetch"])
def test_the_performer_and_location_are_read_from_the_fhir_server(client: FlaskClient, server: FhirTestServer,
                                                                 prefetch: bool) -> None:
    [card] = scope_cards(cards(client, against(therapist_order(prefetch), server)))
    assert card["indicator"] == "warning" and "CA" in card["summary"]
    assert "Practitioner/nc-prac-pt-ca" in card["detail"]


@pytest.mark.parametrize("prefetch", [True, False], ids=["with-prefetch", "without-prefetch"])
def test_without_a_fhir_server_the_scope_check_says_it_could_not_run(client: FlaskClient, prefetch: bool) -> None:
    found = cards(client, therapist_order(prefetch))
    assert not scope_cards(found)
    [unchecked] = [card for card in found if "extension" not in card]
    assert unchecked["indicator"] == "info" and "Scope of practice" in unchecked["detail"]


def test_with_the_performer_and_location_in_reach_there_is_no_not_checked_card(client: FlaskClient,
                                                                                server: FhirTestServer) -> None:
    # The clean order with its own signer and encounter: nothing is missing, nothing is said.
    body = json.loads(ORDER.read_text(encoding="utf-8"))
    body.pop("prefetch")
    assert cards(client, against(body, server)) == []
