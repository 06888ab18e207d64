"""Card rendering: code changes applied to whole drafts, stable identities, one card per problem."""

from __future__ import annotations

from typing import Any

import pytest

from needlecheck.cds_hooks.cards import apply_code_change, cards_for, finding_card, unchecked_card
from needlecheck.plugin.findings import CodeChange, Finding, Severity, Topic
from needlecheck.plugin.rules.code_matches_muscle_count import RULE
from tests.support.builders import line, three_muscles
from tests.support.card_conformance import assert_conformant_response

CPT = "http://www.ama-assn.org/go/cpt"
CLAIM: dict[str, Any] = {
    "resourceType": "Claim", "id": "c1", "status": "draft", "use": "claim", "created": "2026-03-02",
    "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/claim-type", "code": "professional"}]},
    "patient": {"reference": "Patient/p1"}, "provider": {"reference": "Practitioner/u1"},
    "priority": {"coding": [{"code": "normal"}]},
    "insurance": [{"sequence": 1, "focal": True, "coverage": {"reference": "Coverage/cov1"}}],
    "item": [{"sequence": 1, "productOrService": {"coding": [{"system": CPT, "code": "20560"}], "text": "DN 1-2"}},
             {"sequence": 2, "productOrService": {"coding": [{"system": CPT, "code": "20560"}]}}],
    "note": [{"text": ""}],
}


def finding(rule_id: str = "DN-CODE-001", line_key: str = "Claim/c1#item-1", fix: CodeChange | None = None) -> Finding:
    return Finding(rule_id, Severity.WARNING, Topic.CLAIM, "Claim line 1: bill 20561", "detail", line_key,
                   "claim line 1", (), fix)


def test_a_claim_line_change_touches_that_line_only() -> None:
    updated = apply_code_change(CLAIM, CodeChange("Claim/c1", "20560", "20561", 1))
    assert updated["item"][0]["productOrService"]["coding"][0]["code"] == "20561"
    assert "text" not in updated["item"][0]["productOrService"]
    assert updated["item"][1]["productOrService"]["coding"][0]["code"] == "20560"
    assert CLAIM["item"][0]["productOrService"]["coding"][0]["code"] == "20560"
    assert "note" not in updated


def test_an_order_change_touches_its_code() -> None:
    order = {"resourceType": "ServiceRequest", "code": {"coding": [{"system": "urn:other", "code": "20560"},
                                                                   {"system": CPT, "code": "20560"}]}}
    updated = apply_code_change(order, CodeChange("ServiceRequest/s", "20560", "20561"))
    assert [c["code"] for c in updated["code"]["coding"]] == ["20560", "20561"]


def test_one_card_per_rule_and_line_with_stable_uuids() -> None:
    fix = CodeChange("Claim/c1", "20560", "20561", 1)
    cards = cards_for([finding(fix=fix), finding(fix=fix), finding(line_key="Claim/c1#item-2")], "hook-1",
                      {"Claim/c1": CLAIM})
    assert len(cards) == 2
    again = cards_for([finding(fix=fix)], "hook-1", {"Claim/c1": CLAIM})
    assert again[0]["uuid"] == cards[0]["uuid"]
    assert again[0]["suggestions"][0]["uuid"] == cards[0]["suggestions"][0]["uuid"]
    assert cards_for([finding()], "hook-2", {})[0]["uuid"] != cards[0]["uuid"]


def test_a_fix_without_its_draft_gives_no_suggestion() -> None:
    [card] = cards_for([finding(fix=CodeChange("Claim/other", "20560", "20561", 1))], "h", {"Claim/c1": CLAIM})
    assert "suggestions" not in card and "selectionBehavior" not in card


def test_a_summary_is_never_cut_when_it_is_within_the_limit() -> None:
    summary = ("Add GY or GX: a physical therapist's dry needling is excluded by statute, never paid. " * 2)[:139]
    [card] = cards_for([Finding("DN-DOC-001", Severity.WARNING, Topic.CLAIM, summary, "d", "k", "l", ())], "h", {})
    assert card["summary"] == summary


def test_only_a_programming_error_past_139_is_cut_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    long = Finding("DN-DOC-001", Severity.WARNING, Topic.CLAIM, "word " * 60, "d", "k", "l", ())
    [card] = cards_for([long], "h", {})
    assert len(card["summary"]) <= 139 and "DN-DOC-001" in caplog.text


def test_unchecked_card_is_info_and_conformant() -> None:
    card = unchecked_card("h", ("earlier sessions on the same date (HTTP 503)",))
    assert card["indicator"] == "info" and "HTTP 503" in card["detail"] and "Not checked" in card["summary"]
    assert_conformant_response({"cards": [card]})


def test_detail_cites_the_rules_rationale_and_its_sources() -> None:
    finding = RULE.finding(line("20560", *three_muscles()), "summary", "The detail.")
    detail = finding_card(finding, "hi", {})["detail"]
    assert detail.startswith("The detail.\n\nRule **DN-CODE-001**: " + RULE.checks)
    assert all(source.url in detail for source in RULE.sources)


def test_is_recommended_only_where_the_evidence_proves_the_change() -> None:
    draft = {"resourceType": "ServiceRequest", "id": "sr-1", "status": "draft", "intent": "order",
             "subject": {"reference": "Patient/p1"},
             "code": {"coding": [{"system": "http://www.ama-assn.org/go/cpt", "code": "20561"}]}}
    proven = CodeChange("ServiceRequest/sr-1", "20561", "20560")
    offered = CodeChange("ServiceRequest/sr-1", "20561", "20560", proven=False)
    for change, recommended in ((proven, True), (offered, False)):
        finding = Finding("DN-CODE-001", Severity.WARNING, Topic.CLAIM, "s", "d", "k", "l", (), fix=change)
        [suggestion] = finding_card(finding, "h", {"ServiceRequest/sr-1": draft})["suggestions"]
        assert suggestion.get("isRecommended", False) is recommended


def test_a_draft_that_is_not_valid_fhir_gets_the_card_without_a_one_click_change() -> None:
    # The engine reads only what it needs; a resource handed back to the EHR must be valid FHIR R4 whole.
    invalid = {**CLAIM, "insurance": [{"sequence": "first", "focal": True, "coverage": {"reference": "Coverage/c"}}]}
    [card] = cards_for([finding(fix=CodeChange("Claim/c1", "20560", "20561", 1))], "hook-1", {"Claim/c1": invalid})
    assert "suggestions" not in card
    assert ("No one-click change is offered: the draft Claim/c1 is not valid FHIR R4 (insurance.0.sequence"
            in card["detail"])


def test_no_update_is_offered_when_pruning_an_empty_required_element_would_break_the_draft() -> None:
    # Found by test_hostile_input: "type": {} passes the R4 model, is pruned from the echo, and the update then
    # lacks Claim.type. The card stays; the suggestion goes.
    valid = {"resourceType": "Claim", "id": "c1", "status": "draft", "use": "claim", "created": "2026-03-02",
             "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/claim-type",
                                  "code": "professional"}]},
             "patient": {"reference": "Patient/p1"}, "provider": {"reference": "Practitioner/pr1"},
             "priority": {"coding": [{"code": "normal"}]}, "insurance": [{"sequence": 1, "focal": True,
                                                                          "coverage": {"reference": "Coverage/cov1"}}],
             "item": [{"sequence": 1, "productOrService": {"coding": [{"system": CPT, "code": "20560"}]}}]}
    fix = CodeChange("Claim/c1", "20560", "20561", 1)
    [kept] = cards_for([finding(fix=fix)], "h", {"Claim/c1": valid})
    assert kept["suggestions"][0]["actions"][0]["resource"]["type"] == valid["type"]
    empty_type = {**valid, "type": {}}
    [card] = cards_for([finding(fix=fix)], "h", {"Claim/c1": empty_type})
    assert "suggestions" not in card and "selectionBehavior" not in card and card["summary"]
