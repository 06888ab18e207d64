"""``needlecheck check`` on every request fixture gives the cards the manifest expects."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

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
