"""Real EHR code systems: the OID spellings of CPT, HCPCS, ICD-10-CM and SNOMED CT count as those systems.

Every request fixture is re-spelled with OIDs (``urn:oid:2.16.840.1.113883.6.12`` for CPT and so on) and must
give the cards its FHIR-URI original gives: through the engine (``needlecheck check``), and through both hooks
over HTTP, with full prefetch and with no prefetch at all (the record then comes from a real FHIR server that
holds the OID-spelled copy of the shared fixture Bundle). A code change keeps the sender's spelling.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from needlecheck.cds_hooks.cards import apply_code_change
from needlecheck.cds_hooks.cli import main
from needlecheck.mappings.code_systems import canonical_system, load_code_systems, spellings_of
from needlecheck.mappings.cpt import CPT_SYSTEM
from needlecheck.mappings.errors import MappingError
from needlecheck.plugin.findings import CodeChange, Severity
from needlecheck.plugin.rules.medicare_clbp_diagnosis import check_medicare_clbp_diagnosis
from needlecheck.plugin.terms import ICD10CM_SYSTEM, SNOMED_SYSTEM, Coding
from tests.support.builders import line, two_muscles
from tests.support.fhir_server import FhirTestServer
from tests.support.fixtures_fhir import FHIR_BUNDLE_PATH, read_bundle
from tests.support.medicare import PHYSICIAN, by, medicare
from tests.test_integration_fhir_server import FULL_PREFETCH, MANIFEST, against, call, cards_of, load_request
from tests.test_integration_medicare import BUNDLE as MEDICARE_BUNDLE
from tests.test_integration_medicare import SESSION_13
from tests.test_medicare_hooks import CERVICALGIA, medicare_order

CPT_OID = "urn:oid:2.16.840.1.113883.6.12"
HCPCS_OID = "urn:oid:2.16.840.1.113883.6.285"
ICD10CM_OID = "urn:oid:2.16.840.1.113883.6.90"
SNOMED_OID = "urn:oid:2.16.840.1.113883.6.96"
HCPCS_URI = "http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets"
TO_OID = {f'"{CPT_SYSTEM}"': f'"{CPT_OID}"', f'"{ICD10CM_SYSTEM}"': f'"{ICD10CM_OID}"',
          f'"{SNOMED_SYSTEM}"': f'"{SNOMED_OID}"'}
REQUESTS_DIR = Path(__file__).resolve().parent.parent / "fixtures" / "requests"
# Fixtures whose DN-CODE-001 card offers a change, so the update action can be inspected.
WITH_CHANGE = sorted(name for name in FULL_PREFETCH if "expect_code" in MANIFEST[name])


def as_oids(document: dict[str, Any]) -> dict[str, Any]:
    """``document`` with every CPT, ICD-10-CM and SNOMED CT system written as its OID."""
    text = json.dumps(document)
    for uri, oid in TO_OID.items():
        text = text.replace(uri, oid)
    result: dict[str, Any] = json.loads(text)
    return result


def card_keys(cards: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """(rule id, or the summary of a card without one; indicator) of every card, sorted."""
    return sorted((card.get("extension", {}).get("org.needlecheck.rule-id", card["summary"]), card["indicator"])
                  for card in cards)


def changed_codings(cards: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The CPT codings of the order or claim lines in every update action."""
    codings = []
    for card in cards:
        for suggestion in card.get("suggestions", []):
            for action in suggestion["actions"]:
                resource = action["resource"]
                concepts = [resource.get("code")] + [item.get("productOrService") for item in resource.get("item", [])]
                codings += [c for concept in concepts if concept for c in concept.get("coding", [])]
    return codings


@pytest.fixture(scope="module")
def oid_server() -> Iterator[FhirTestServer]:
    """A FHIR server holding the shared fixture Bundle with every code system written as its OID."""
    with FhirTestServer() as server:
        server.load(as_oids(read_bundle(FHIR_BUNDLE_PATH)))
        yield server


# ------------------------------------------------------------------------------------------ the table


def test_each_oid_names_its_code_system() -> None:
    assert canonical_system(CPT_OID) == CPT_SYSTEM
    assert canonical_system(HCPCS_OID) == HCPCS_URI
    assert canonical_system(ICD10CM_OID) == ICD10CM_SYSTEM
    assert canonical_system(SNOMED_OID) == SNOMED_SYSTEM
    assert canonical_system("http://example.org/cpt") == "http://example.org/cpt"
    assert spellings_of(CPT_SYSTEM) == (CPT_SYSTEM, CPT_OID)


def test_codings_in_the_oid_spelling_are_in_the_system() -> None:
    assert Coding(CPT_OID, "20560").is_in(CPT_SYSTEM)
    assert Coding(ICD10CM_OID, "M54.50").is_in(ICD10CM_SYSTEM)
    assert not Coding("urn:oid:2.16.840.1.113883.6.1", "20560").is_in(CPT_SYSTEM)  # LOINC's OID
    assert not Coding(CPT_OID, None).is_in(CPT_SYSTEM)


def test_a_spelling_without_a_canonical_row_or_source_is_refused(tmp_path: Path) -> None:
    header = "system,canonical_system,code_system,source_id,notes\n"
    orphan = tmp_path / "orphan.csv"
    orphan.write_text(header + "urn:oid:1.2,http://example.org/x,X,THO-CPT,\n", encoding="utf-8")
    with pytest.raises(MappingError, match="row of its own"):
        load_code_systems(orphan)
    unsourced = tmp_path / "unsourced.csv"
    unsourced.write_text(header + "http://example.org/x,http://example.org/x,X,NOPE,\n", encoding="utf-8")
    with pytest.raises(MappingError) as raised:
        load_code_systems(unsourced)
    assert raised.value.field == "source_id"


def test_a_code_change_keeps_the_senders_spelling() -> None:
    claim = {"resourceType": "Claim", "item": [
        {"sequence": 1, "productOrService": {"coding": [{"system": CPT_OID, "code": "20560"}]}}]}
    updated = apply_code_change(claim, CodeChange("Claim/c1", "20560", "20561", 1))
    [coding] = updated["item"][0]["productOrService"]["coding"]
    assert (coding["system"], coding["code"]) == (CPT_OID, "20561")


# --------------------------------------------------------------------------------- through the engine


@pytest.mark.parametrize("name", FULL_PREFETCH)
def test_check_gives_the_same_cards_for_oid_spellings(name: str, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    original = load_request(name)
    respelled = tmp_path / "oid.json"
    respelled.write_text(json.dumps(as_oids(original)), encoding="utf-8")
    assert main(["check", str(REQUESTS_DIR / name)]) == 0
    expected = json.loads(capsys.readouterr().out)
    assert main(["check", str(respelled)]) == 0
    got = json.loads(capsys.readouterr().out)
    assert card_keys(got["cards"]) == card_keys(expected["cards"])
    assert all(coding["system"] == CPT_OID for coding in changed_codings(got["cards"]))


# ----------------------------------------------------------------------------- through both hooks


@pytest.mark.parametrize("prefetched", [True, False], ids=["prefetch", "fhir-search"])
@pytest.mark.parametrize("name", FULL_PREFETCH)
def test_both_hooks_give_the_same_cards_for_oid_spellings(
        name: str, prefetched: bool, client: FlaskClient, fhir_server: FhirTestServer,
        oid_server: FhirTestServer) -> None:
    uri_body = against(load_request(name), fhir_server.base_url, fhir_server.token)
    oid_body = against(as_oids(load_request(name)), oid_server.base_url, oid_server.token)
    if not prefetched:
        for body in (uri_body, oid_body):
            del body["prefetch"]
    expected = cards_of(call(client, uri_body))
    got = cards_of(call(client, oid_body))
    assert card_keys(got) == card_keys(expected)


@pytest.mark.parametrize("prefetched", [True, False], ids=["prefetch", "fhir-search"])
@pytest.mark.parametrize("name", WITH_CHANGE)
def test_the_suggested_change_keeps_the_oid(name: str, prefetched: bool, client: FlaskClient,
                                            oid_server: FhirTestServer) -> None:
    body = against(as_oids(load_request(name)), oid_server.base_url, oid_server.token)
    if not prefetched:
        del body["prefetch"]
    codings = changed_codings(cards_of(call(client, body)))
    assert {(c["system"], c["code"]) for c in codings} >= {(CPT_OID, MANIFEST[name]["expect_code"])}
    assert all(c["system"] == CPT_OID for c in codings)


def test_history_recorded_with_the_oid_is_found_by_the_search(
        client: FlaskClient, oid_server: FhirTestServer) -> None:
    """The same-date history check needs the earlier Procedure that the EHR stored with CPT's OID."""
    names = [n for n in FULL_PREFETCH if "DN-CODE-002" in MANIFEST[n]["expect_rules"]]
    assert names, "a fixture with a same-date earlier session is needed"
    body = against(as_oids(load_request(names[0])), oid_server.base_url, oid_server.token)
    del body["prefetch"]["priorProcedures"]
    rules = {card.get("extension", {}).get("org.needlecheck.rule-id") for card in cards_of(call(client, body))}
    assert "DN-CODE-002" in rules



# ------------------------------------------------------------------- ICD-10-CM by OID under Medicare


def test_an_icd10cm_oid_diagnosis_is_read_as_icd10cm_by_the_engine() -> None:
    oid_line = by(line("20560", *two_muscles(), indications=(Coding(ICD10CM_OID, "M54.2", "Cervicalgia"),)),
                  PHYSICIAN)
    [finding] = check_medicare_clbp_diagnosis(medicare(oid_line))
    assert finding.severity is Severity.WARNING and "another code system" not in finding.detail
    low_back = by(line("20560", *two_muscles(), indications=(Coding(ICD10CM_OID, "M54.50"),)), PHYSICIAN)
    assert [f for f in check_medicare_clbp_diagnosis(medicare(low_back)) if f.severity is Severity.WARNING] == []


@pytest.fixture(scope="module")
def medicare_oid_server() -> Iterator[FhirTestServer]:
    """The Medicare patient's record with every code system written as its OID."""
    with FhirTestServer() as server:
        server.load(as_oids(read_bundle(MEDICARE_BUNDLE)))
        yield server


def warning_rules(cards: list[dict[str, Any]]) -> set[str]:
    """Rule ids of the warning cards."""
    return {card["extension"]["org.needlecheck.rule-id"] for card in cards
            if card["indicator"] == "warning" and "extension" in card}


@pytest.mark.parametrize("prefetched", [True, False], ids=["prefetch", "fhir-search"])
def test_medicare_hooks_read_oid_spelled_claims_and_orders(prefetched: bool, client: FlaskClient,
                                                           medicare_oid_server: FhirTestServer) -> None:
    claim = against(as_oids(load_request(SESSION_13)), medicare_oid_server.base_url, medicare_oid_server.token)
    neck_order = against(as_oids(medicare_order(CERVICALGIA)), medicare_oid_server.base_url,
                         medicare_oid_server.token)
    low_back = {"system": ICD10CM_SYSTEM, "code": "M54.59", "display": "Other low back pain"}
    back_order = against(as_oids(medicare_order(low_back)), medicare_oid_server.base_url,
                         medicare_oid_server.token)
    if not prefetched:
        for body in (claim, neck_order, back_order):
            del body["prefetch"]
    # The twelve earlier sessions (CPT by OID) are counted: session 13 needs KX.
    assert "DN-FREQ-001" in warning_rules(cards_of(call(client, claim)))
    assert "DN-MCR-001" in warning_rules(cards_of(call(client, neck_order)))
    assert not {rule for rule in warning_rules(cards_of(call(client, back_order))) if rule.startswith("DN-MCR")}
