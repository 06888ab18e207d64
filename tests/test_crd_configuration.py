"""Da Vinci CRD configuration options: advertised in discovery, honoured per request (dev-4..17)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from needlecheck.cds_hooks.app import create_app
from needlecheck.cds_hooks.crd_configuration import capped
from needlecheck.cds_hooks.settings import Settings
from needlecheck.plugin.context import RuleOptions
from needlecheck.plugin.families import Family
from needlecheck.plugin.rules import all_rules

REQUESTS = Path(__file__).resolve().parent.parent / "fixtures" / "requests"
ORDER_SIGN = "/cds-services/dry-needling-order-sign"


@pytest.fixture
def app(tmp_path: Path) -> Iterator[Flask]:
    """The conftest service with good-practice documentation on, so that a documentation family card exists."""
    application = create_app(Settings(data_dir=tmp_path / "data", allow_http=True,
                                      rule_options=RuleOptions(good_practice_elements=True)))
    yield application
    application.extensions["needlecheck.pool"].shutdown(wait=False)


def load(name: str) -> dict[str, Any]:
    return json.loads((REQUESTS / name).read_text(encoding="utf-8"))


def without_coverage(request: dict[str, Any]) -> dict[str, Any]:
    """``request`` whose prefetch holds no Coverage, so that DN-PAYER-001 (coverage family) fires."""
    empty = {"resourceType": "Bundle", "type": "searchset", "total": 0, "entry": []}
    return {**request, "prefetch": {**request["prefetch"], "coverage": empty}}


def rule_ids(body: dict[str, Any]) -> list[str | None]:
    return [card.get("extension", {}).get("org.needlecheck.rule-id") for card in body["cards"]]


def with_configuration(request: dict[str, Any], configuration: Any) -> dict[str, Any]:
    return {**request, "extension": {"davinci-crd.configuration": configuration}}


def test_discovery_lists_one_boolean_option_per_family_and_max_cards(client: FlaskClient) -> None:
    services = client.get("/cds-services").get_json()["services"]
    assert len(services) == 2
    for service in services:
        options = service["extension"]["davinci-crd.configuration-options"]
        codes = [option["code"] for option in options]
        assert len(codes) == len(set(codes))
        for option in options:
            assert set(option) == {"code", "type", "name", "description", "default"}
            assert re.fullmatch(r"[a-z][a-z-]*", option["code"])
            assert option["name"] and option["description"]
        booleans = {o["code"] for o in options if o["type"] == "boolean"}
        assert booleans == {str(rule.family) for rule in all_rules()}
        assert all(o["default"] is True for o in options if o["type"] == "boolean")
        (max_cards,) = [o for o in options if o["code"] == "max-cards"]
        assert max_cards["type"] == "integer" and isinstance(max_cards["default"], int)


def test_a_family_switched_off_returns_no_card_of_it(client: FlaskClient) -> None:
    request = without_coverage(load("order-sign/code001-20561-two-muscles.json"))
    plain = rule_ids(client.post(ORDER_SIGN, json=request).get_json())
    assert {"DN-CODE-001", "DN-DOC-010", "DN-PAYER-001"} <= set(plain)
    answer = client.post(ORDER_SIGN, json=with_configuration(request, {"documentation": False, "coverage": False,
                                                                       "coding": True}))
    assert answer.status_code == 200
    governed = rule_ids(answer.get_json())
    assert "DN-CODE-001" in governed
    assert "DN-DOC-010" not in governed and "DN-PAYER-001" not in governed


def test_max_cards_keeps_the_most_severe(client: FlaskClient) -> None:
    request = without_coverage(load("order-sign/code001-20561-two-muscles.json"))
    plain = client.post(ORDER_SIGN, json=request).get_json()["cards"]
    [most_severe] = [card for card in plain if card["indicator"] == "warning"]
    assert len(plain) == 3 and {card["indicator"] for card in plain} == {"warning", "info"}
    one = client.post(ORDER_SIGN, json=with_configuration(request, {"max-cards": 1})).get_json()["cards"]
    assert [card["uuid"] for card in one] == [most_severe["uuid"]]
    none = client.post(ORDER_SIGN, json=with_configuration(request, {"max-cards": 0})).get_json()["cards"]
    assert none == []


def test_unknown_options_are_ignored_and_the_extension_is_never_required(client: FlaskClient) -> None:
    request = load("order-sign/code001-20561-two-muscles.json")
    plain = client.post(ORDER_SIGN, json=request).get_json()
    answer = client.post(ORDER_SIGN, json=with_configuration(request, {"unsolicited-determ": False, "x": [1]}))
    assert answer.status_code == 200 and rule_ids(answer.get_json()) == rule_ids(plain)


@pytest.mark.parametrize(("configuration", "field"), [
    ({"coding": "no"}, "extension.davinci-crd.configuration.coding"),
    ({"max-cards": -1}, "extension.davinci-crd.configuration.max-cards"),
    ({"max-cards": 2.5}, "extension.davinci-crd.configuration.max-cards"),
    ([1, 2], "extension.davinci-crd.configuration"),
])
def test_a_known_option_of_the_wrong_type_is_a_400_naming_it(client: FlaskClient, configuration: Any,
                                                             field: str) -> None:
    answer = client.post(ORDER_SIGN, json=with_configuration(load("order-sign/code001-20561-two-muscles.json"),
                                                             configuration))
    assert answer.status_code == 400
    assert answer.get_json()["issue"][0]["expression"] == [field]


def test_capping_keeps_critical_then_warning_in_their_order() -> None:
    cards = [{"uuid": str(i), "indicator": level} for i, level in
             enumerate(["info", "warning", "critical", "info", "warning"])]
    assert [c["uuid"] for c in capped(cards, 3)] == ["1", "2", "4"]
    assert capped(cards, 10) == cards


def test_every_family_is_offered() -> None:
    # A family no rule belongs to would be an option that does nothing.
    assert {rule.family for rule in all_rules()} == set(Family)
