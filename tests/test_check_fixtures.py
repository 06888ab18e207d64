"""``needlecheck check`` on every request fixture gives the cards the manifest expects."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from flask.testing import FlaskClient

from needlecheck.cds_hooks.cards import SUMMARY_BUDGET
from needlecheck.cds_hooks.cli import main
from tests.support.card_conformance import assert_conformant_response

REQUESTS = Path(__file__).resolve().parent.parent / "fixtures" / "requests"
MANIFEST: list[dict[str, Any]] = yaml.safe_load((REQUESTS / "manifest.yaml").read_text(encoding="utf-8"))
OFFLINE = [case for case in MANIFEST if not case.get("needs_fhir_server")]


def rule_ids(response: dict[str, Any], indicator: str = "warning") -> list[str]:
    """The rule ids of the cards with ``indicator``, sorted."""
    return sorted(card["extension"]["org.needlecheck.rule-id"] for card in response["cards"]
                  if "extension" in card and card["indicator"] == indicator)


def suggested_codes(response: dict[str, Any]) -> set[str]:
    """Every CPT code an update action proposes."""
    codes = set()
    for card in response["cards"]:
        for suggestion in card.get("suggestions", []):
            for action in suggestion["actions"]:
                resource = action["resource"]
                concepts = [resource.get("code")] + [i.get("productOrService") for i in resource.get("item", [])]
                codes |= {c["code"] for concept in concepts if concept for c in concept.get("coding", [])}
    return codes


def test_every_fixture_file_is_in_the_manifest() -> None:
    listed = {case["file"] for case in MANIFEST}
    on_disk = {str(path.relative_to(REQUESTS)) for path in REQUESTS.glob("*/*.json")}
    assert listed == on_disk


@pytest.mark.parametrize("case", OFFLINE, ids=[case["file"] for case in OFFLINE])
def test_check_prints_the_expected_cards(case: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", str(REQUESTS / case["file"])]) == 0
    response = json.loads(capsys.readouterr().out)
    assert_conformant_response(response)
    assert rule_ids(response) == sorted(case["expect_rules"])
    assert rule_ids(response, "info") == sorted(case.get("expect_info", []))
    if "expect_code" in case:
        assert case["expect_code"] in suggested_codes(response)
        [card] = [c for c in response["cards"] if c["extension"]["org.needlecheck.rule-id"] == "DN-CODE-001"]
        assert f"{case['muscle_count']} muscle" in card["summary"]


CLEAN = [case for case in OFFLINE if Path(case["file"]).name.startswith("clean-")]


@pytest.mark.parametrize("case", CLEAN, ids=[case["file"] for case in CLEAN])
def test_a_clean_request_answers_no_card_at_all(case: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    # Issue 9, card economy: these answered three info cards (good-practice documentation, an unknown
    # payor, data sets not installed).
    assert main(["check", str(REQUESTS / case["file"])]) == 0
    assert json.loads(capsys.readouterr().out) == {"cards": []}


@pytest.mark.parametrize("case", CLEAN, ids=[case["file"] for case in CLEAN])
def test_a_clean_request_answers_no_card_over_http(case: dict[str, Any], client: FlaskClient) -> None:
    service = "dry-needling-order-sign" if case["hook"] == "order-sign" else "dry-needling-claim-create"
    response = client.post(f"/cds-services/{service}", json=json.loads((REQUESTS / case["file"]).read_text()))
    assert response.status_code == 200 and response.get_json() == {"cards": []}


@pytest.mark.parametrize("case", OFFLINE, ids=[case["file"] for case in OFFLINE])
def test_every_summary_fits_100_characters_uncut(case: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", str(REQUESTS / case["file"])]) == 0
    for card in json.loads(capsys.readouterr().out)["cards"]:
        assert len(card["summary"]) <= SUMMARY_BUDGET and not card["summary"].endswith("…"), card["summary"]


def test_good_practice_elements_is_a_card_only_when_configured(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "needlecheck.toml"
    config.write_text("[documentation]\ngood_practice_elements = true\n", encoding="utf-8")
    request = str(REQUESTS / CLEAN[0]["file"])
    assert main(["check", "--config", str(config), request]) == 0
    assert rule_ids(json.loads(capsys.readouterr().out), "info") == ["DN-DOC-010"]


def test_a_clean_claim_without_consent_gets_one_info_card(tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    # DOC-14 (ACA, Hamm): consent is mandatory. The clean fixtures document it in the billed Procedure's note;
    # without that note the same request answers one info card, DN-DOC-010, naming informed consent alone.
    request = json.loads((REQUESTS / "claim-create/clean-20561-four-muscles-contained.json").read_text())
    for resource in request["context"]["claim"]["contained"]:
        if resource["resourceType"] == "Procedure":
            resource["note"] = [note for note in resource.get("note", []) if "consent" not in note["text"].lower()]
    path = tmp_path / "no-consent.json"
    path.write_text(json.dumps(request), encoding="utf-8")
    assert main(["check", str(path)]) == 0
    [card] = json.loads(capsys.readouterr().out)["cards"]
    assert (card["indicator"], card["extension"]["org.needlecheck.rule-id"]) == ("info", "DN-DOC-010")
    assert card["summary"] == "Document informed consent: professional guidance requires it"
