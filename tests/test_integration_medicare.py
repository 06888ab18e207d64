"""Medicare's session limits through ``claim-create`` with the earlier sessions on a real FHIR server.

The patient (fixtures/fhir/medicare-patient-bundle.json) has Medicare fee-for-service coverage, chronic
low back pain since 2025-06-01 and twelve dry-needling sessions with a physician from 2026-01-06 to
2026-03-24; the claim bills the thirteenth, on 2026-04-02. The frequency rule must see the same twelve
sessions whether the EHR prefetches them or Needlecheck has to search for them.
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
from tests.test_integration_fhir_server import against, call, cards_of, load_request, rule_ids

BUNDLE = Path(__file__).resolve().parents[1] / "fixtures" / "fhir" / "medicare-patient-bundle.json"
SESSION_13 = "claim-create/mcr-session-13-without-kx.json"
FREQUENCY_RULE = "DN-FREQ-001"


@pytest.fixture(scope="module")
def medicare_server() -> Iterator[FhirTestServer]:
    """A FHIR server holding only the Medicare patient's record."""
    with FhirTestServer() as server:
        server.load(json.loads(BUNDLE.read_text(encoding="utf-8")))
        yield server


def with_kx(body: dict[str, Any]) -> dict[str, Any]:
    """The request with modifier KX on the claim line."""
    changed = copy.deepcopy(body)
    changed["context"]["claim"]["item"][0]["modifier"] = [
        {"coding": [{"system": "http://www.ama-assn.org/go/cpt", "code": "KX"}]}]
    return changed


def without_prefetch(body: dict[str, Any]) -> dict[str, Any]:
    """The request as an EHR that prefetches nothing sends it."""
    bare = copy.deepcopy(body)
    del bare["prefetch"]
    return bare


@pytest.mark.parametrize("prefetched", [True, False], ids=["prefetch", "fhir-search"])
def test_session_13_without_kx_is_flagged(prefetched: bool, client: FlaskClient,
                                          medicare_server: FhirTestServer) -> None:
    body = against(load_request(SESSION_13), medicare_server.base_url, medicare_server.token)
    cards = cards_of(call(client, body if prefetched else without_prefetch(body)))
    assert FREQUENCY_RULE in rule_ids(cards)
    [card] = [c for c in cards if c.get("extension", {}).get("org.needlecheck.rule-id") == FREQUENCY_RULE]
    assert card["indicator"] == "warning"
    assert "KX" in card["detail"] and "13" in card["detail"]


@pytest.mark.parametrize("prefetched", [True, False], ids=["prefetch", "fhir-search"])
def test_session_13_with_kx_is_within_the_limits(prefetched: bool, client: FlaskClient,
                                                 medicare_server: FhirTestServer) -> None:
    body = with_kx(against(load_request(SESSION_13), medicare_server.base_url, medicare_server.token))
    cards = cards_of(call(client, body if prefetched else without_prefetch(body)))
    assert FREQUENCY_RULE not in rule_ids(cards)


def test_search_and_prefetch_give_the_same_cards(client: FlaskClient, medicare_server: FhirTestServer) -> None:
    body = against(load_request(SESSION_13), medicare_server.base_url, medicare_server.token)
    assert call(client, without_prefetch(body)).get_json() == call(client, body).get_json()
