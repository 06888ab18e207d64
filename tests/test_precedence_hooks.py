"""Issue 9, finding 5 over HTTP: one card per root cause, through both hooks, with and without prefetch.

The Medicare patient of ``fixtures/fhir/medicare-patient-bundle.json`` (fee-for-service, chronic low back
pain, twelve earlier sessions) on a real FHIR server; the claim bills the thirteenth session. Variants: the
practitioner is a physical therapist (on the server too, for the calls without prefetch), or the diagnosis
is neck pain.
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
from tests.test_integration_fhir_server import against, call, cards_of, load_request
from tests.test_medicare_hooks import CERVICALGIA, for_neck_pain, medicare_order, with_taxonomy

BUNDLE = Path(__file__).resolve().parents[1] / "fixtures" / "fhir" / "medicare-patient-bundle.json"
SESSION_13 = "claim-create/mcr-session-13-without-kx.json"
PHYSICAL_THERAPIST = "225100000X"
LOW_BACK_PAIN = {"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "M54.59", "display": "Other low back pain"}
PREFETCH = [True, False]
IDS = ["prefetch", "fhir-server"]


def _bundle() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(BUNDLE.read_text(encoding="utf-8"))
    return loaded


@pytest.fixture(scope="module")
def medicare_server() -> Iterator[FhirTestServer]:
    """The Medicare patient's record with a physician (as in the fixture)."""
    with FhirTestServer() as server:
        server.load(_bundle())
        yield server


@pytest.fixture(scope="module")
def neck_server() -> Iterator[FhirTestServer]:
    """The same record with the low back pain (Conditions and Procedures) recoded as cervicalgia."""
    with FhirTestServer() as server:
        server.load(for_neck_pain(_bundle()))
        yield server


@pytest.fixture(scope="module")
def therapist_server() -> Iterator[FhirTestServer]:
    """The same record, with the practitioner a physical therapist (no MD, NUCC 225100000X)."""
    bundle = _bundle()
    for entry in bundle["entry"]:
        resource = entry["resource"]
        if resource["resourceType"] == "Practitioner":
            resource.pop("qualification", None)
        if resource["resourceType"] == "PractitionerRole":
            taxonomy = {"system": "http://nucc.org/provider-taxonomy", "code": PHYSICAL_THERAPIST}
            resource["code"] = [{"coding": [taxonomy]}]
    with FhirTestServer() as server:
        server.load(bundle)
        yield server


def send(client: FlaskClient, body: dict[str, Any], server: FhirTestServer, prefetched: bool) -> dict[str, dict]:
    pointed = against(body, server.base_url, server.token)
    if not prefetched:
        pointed.pop("prefetch", None)
    return {card["extension"]["org.needlecheck.rule-id"]: card for card in cards_of(call(client, pointed))
            if "extension" in card}


def claim_by_therapist(modifiers: tuple[str, ...] = ()) -> dict[str, Any]:
    body = with_taxonomy(load_request(SESSION_13), PHYSICAL_THERAPIST)
    if modifiers:
        body["context"]["claim"]["item"][0]["modifier"] = [
            {"coding": [{"system": "http://www.ama-assn.org/go/cpt", "code": code}]} for code in modifiers]
    return body


@pytest.mark.parametrize("prefetched", PREFETCH, ids=IDS)
def test_claim_by_a_physical_therapist_gets_the_statutory_exclusion_only(
        client: FlaskClient, therapist_server: FhirTestServer, prefetched: bool) -> None:
    cards = send(client, claim_by_therapist(), therapist_server, prefetched)
    assert cards["DN-MCR-004"]["indicator"] == "warning"
    assert not set(cards) & {"DN-FREQ-001", "DN-MCR-001", "DN-MCR-002", "DN-DOC-010"}


@pytest.mark.parametrize("prefetched", PREFETCH, ids=IDS)
def test_claim_by_a_physical_therapist_with_gp_and_gy_is_not_asked_for_kx(
        client: FlaskClient, therapist_server: FhirTestServer, prefetched: bool) -> None:
    cards = send(client, claim_by_therapist(("GP", "GY")), therapist_server, prefetched)
    assert "DN-FREQ-001" not in cards and "DN-MCR-004" not in cards
    assert not any("KX" in card["summary"] for card in cards.values())


@pytest.mark.parametrize("prefetched", PREFETCH, ids=IDS)
def test_claim_for_neck_pain_gets_one_coverage_card(client: FlaskClient, neck_server: FhirTestServer,
                                                    prefetched: bool) -> None:
    cards = send(client, for_neck_pain(load_request(SESSION_13)), neck_server, prefetched)
    assert cards["DN-MCR-001"]["indicator"] == "warning"
    assert not set(cards) & {"DN-FREQ-001", "DN-MCR-002", "DN-DOC-010"}


@pytest.mark.parametrize("prefetched", PREFETCH, ids=IDS)
def test_the_physicians_claim_still_needs_kx(client: FlaskClient, medicare_server: FhirTestServer,
                                             prefetched: bool) -> None:
    cards = send(client, load_request(SESSION_13), medicare_server, prefetched)
    assert "KX" in cards["DN-FREQ-001"]["summary"]


@pytest.mark.parametrize("prefetched", PREFETCH, ids=IDS)
def test_order_for_session_13_asks_to_document_improvement_not_kx(client: FlaskClient,
                                                                 medicare_server: FhirTestServer,
                                                                 prefetched: bool) -> None:
    card = send(client, medicare_order(LOW_BACK_PAIN), medicare_server, prefetched)["DN-FREQ-001"]
    assert "KX" not in card["summary"] and "improvement" in card["summary"]


@pytest.mark.parametrize("prefetched", PREFETCH, ids=IDS)
def test_order_by_a_physical_therapist_gets_abn_advice_only(client: FlaskClient, therapist_server: FhirTestServer,
                                                           prefetched: bool) -> None:
    order = medicare_order(LOW_BACK_PAIN)
    therapist = with_taxonomy(load_request(SESSION_13), PHYSICAL_THERAPIST)
    order["prefetch"] = copy.deepcopy(therapist["prefetch"])
    cards = send(client, order, therapist_server, prefetched)
    assert "ABN" in cards["DN-MCR-004"]["summary"] and "GY" not in cards["DN-MCR-004"]["summary"]
    assert "DN-FREQ-001" not in cards


@pytest.mark.parametrize("prefetched", PREFETCH, ids=IDS)
def test_order_for_neck_pain_gets_abn_advice_without_modifiers(client: FlaskClient, neck_server: FhirTestServer,
                                                              prefetched: bool) -> None:
    cards = send(client, for_neck_pain(medicare_order(CERVICALGIA)), neck_server, prefetched)
    card = cards["DN-MCR-001"]
    assert "ABN" in card["summary"] and "GA" not in card["summary"]
    assert "DN-FREQ-001" not in cards
