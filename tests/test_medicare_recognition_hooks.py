"""Medicare is recognised however the EHR records it, through both hooks, with and without prefetch.

The Medicare patient (fixtures/fhir/medicare-patient-bundle.json) is re-recorded with a Coverage that has
no Source of Payment Typology code: an X12 claim filing indicator (MB, 16), a MAC name, a carrier's Medicare
Advantage plan name, or a Coverage.class plan "Part B". Each must still draw the Medicare rules: the
session-13 claim needs KX (DN-FREQ-001) and a neck-pain order is outside NCD 30.3.3 (DN-MCR-001). Without
prefetch, the Coverage comes from a real FHIR server holding the same record.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from needlecheck.cds_hooks.cli import main
from tests.support.fhir_server import FhirTestServer
from tests.test_integration_fhir_server import against, call, cards_of, load_request
from tests.test_integration_medicare import BUNDLE, SESSION_13
from tests.test_medicare_hooks import CERVICALGIA, medicare_order

X12_CFI = "https://codesystem.x12.org/005010/1032"
NO_NAME = "Acme Claims Services"


def coverage_variant(payor: str, type_code: str | None = None, plan: str | None = None) -> dict[str, Any]:
    """How the record's Coverage changes: the payor's name, an X12 type code, a plan class."""
    return {"payor": payor, "type": type_code, "plan": plan}


VARIANTS = {
    "x12-MB": coverage_variant(NO_NAME, "MB"),
    "x12-16": coverage_variant(NO_NAME, "16"),
    "mac-name": coverage_variant("Medicare Part B (Novitas Solutions)"),
    "ma-plan-name": coverage_variant("Aetna Medicare Eagle PPO"),
    "part-b-class": coverage_variant(NO_NAME, plan="Part B"),
}


def respelled(document: dict[str, Any], variant: dict[str, Any]) -> dict[str, Any]:
    """``document`` (request or Bundle) with the Medicare Coverage recorded as ``variant`` says."""
    text = json.dumps(document).replace('"Medicare Part B"', json.dumps(variant["payor"]))
    changed: dict[str, Any] = json.loads(text)

    def rewrite(resource: dict[str, Any]) -> None:
        if resource.get("resourceType") != "Coverage":
            return
        resource.pop("type", None)
        if variant["type"]:
            resource["type"] = {"coding": [{"system": X12_CFI, "code": variant["type"]}]}
        if variant["plan"]:
            resource["class"] = [{"type": {"coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/coverage-class", "code": "plan"}]},
                "value": variant["plan"]}]

    for entry in changed.get("entry", []):
        rewrite(entry["resource"])
    for value in (changed.get("prefetch") or {}).values():
        for entry in (value or {}).get("entry", []) if isinstance(value, dict) else []:
            rewrite(entry["resource"])
    return changed


@pytest.fixture(scope="module")
def medicare_server() -> Iterator[FhirTestServer]:
    """A FHIR server for the Medicare patient; each test loads its own version of the Coverage."""
    with FhirTestServer() as server:
        yield server


def warning_rules(client: FlaskClient, body: dict[str, Any]) -> set[str]:
    """Rule ids of the warning cards the service returns for ``body``."""
    return {card["extension"]["org.needlecheck.rule-id"] for card in cards_of(call(client, body))
            if card["indicator"] == "warning" and "extension" in card}


def requests_for(variant: dict[str, Any], server: FhirTestServer, prefetched: bool) -> tuple[dict[str, Any], ...]:
    """The session-13 claim and the neck-pain order, pointed at ``server`` that holds the variant record."""
    server.load(respelled(json.loads(BUNDLE.read_text(encoding="utf-8")), variant))
    claim = against(respelled(load_request(SESSION_13), variant), server.base_url, server.token)
    order = against(respelled(medicare_order(CERVICALGIA), variant), server.base_url, server.token)
    bodies = (claim, order)
    if not prefetched:
        bodies = tuple(copy.deepcopy(body) for body in bodies)
        for body in bodies:
            del body["prefetch"]
    return bodies


@pytest.mark.parametrize("prefetched", [True, False], ids=["prefetch", "fhir-search"])
@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_medicare_recorded_without_a_sopt_code_draws_the_medicare_rules(
        variant: str, prefetched: bool, client: FlaskClient, medicare_server: FhirTestServer) -> None:
    claim, order = requests_for(VARIANTS[variant], medicare_server, prefetched)
    assert "DN-FREQ-001" in warning_rules(client, claim)
    order_rules = warning_rules(client, order)
    assert "DN-MCR-001" in order_rules
    # A Medicare Advantage plan of a commercial carrier is not the carrier's commercial pack.
    assert "DN-PAYER-002" not in order_rules


@pytest.mark.parametrize("prefetched", [True, False], ids=["prefetch", "fhir-search"])
def test_an_unrecognisable_coverage_draws_no_medicare_rule(prefetched: bool, client: FlaskClient,
                                                          medicare_server: FhirTestServer) -> None:
    """The control: the same record with a payor nobody can place is not treated as Medicare."""
    claim, order = requests_for(coverage_variant(NO_NAME), medicare_server, prefetched)
    assert "DN-FREQ-001" not in warning_rules(client, claim)
    assert "DN-MCR-001" not in warning_rules(client, order)


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_the_engine_recognises_medicare_offline(variant: str, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    request = tmp_path / "claim.json"
    request.write_text(json.dumps(respelled(load_request(SESSION_13), VARIANTS[variant])), encoding="utf-8")
    assert main(["check", str(request)]) == 0
    cards = json.loads(capsys.readouterr().out)["cards"]
    assert "DN-FREQ-001" in {card.get("extension", {}).get("org.needlecheck.rule-id") for card in cards
                             if card["indicator"] == "warning"}
