"""Per-site rule settings: validation at start-up, and their effect on the cards, globally and per client."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from needlecheck.cds_hooks.app import create_app
from needlecheck.cds_hooks.cli import main
from needlecheck.cds_hooks.settings import Settings, SettingsError, load_settings
from needlecheck.cds_hooks.trust_settings import TrustedClient
from needlecheck.plugin.context import RuleOptions
from needlecheck.plugin.findings import Severity
from needlecheck.plugin.rule_settings import RuleSetting, apply_rule_settings
from needlecheck.plugin.rules import all_rules
from tests.support.client_tokens import claims, ec_key, mint

REQUESTS = Path(__file__).resolve().parent.parent / "fixtures" / "requests"
ORDER_SIGN = "/cds-services/dry-needling-order-sign"
ISS, BASE = "https://ehr.example.org", "https://cds.example.org"


def load(name: str) -> dict[str, Any]:
    return json.loads((REQUESTS / name).read_text(encoding="utf-8"))


def write_config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "needlecheck.toml"
    path.write_text(text, encoding="utf-8")
    return path


def cards_by_rule(body: dict[str, Any]) -> dict[str | None, str]:
    return {card.get("extension", {}).get("org.needlecheck.rule-id"): card["indicator"] for card in body["cards"]}


def test_rule_tables_are_read_globally_and_per_client(tmp_path: Path) -> None:
    settings = load_settings(write_config(tmp_path, f"""
public_base_url = "{BASE}"
[rules."DN-DOC-010"]
enabled = false
[rules."DN-PAYER-002"]
severity = "info"
[[trusted_clients]]
iss = "{ISS}"
jku = ["https://ehr.example.org/jwks.json"]
[trusted_clients.rules."DN-SCOPE-001"]
enabled = false
[trusted_clients.rules."DN-PAYER-002"]
severity = "critical"
"""))
    assert settings.rules == {"DN-DOC-010": RuleSetting(enabled=False),
                              "DN-PAYER-002": RuleSetting(severity=Severity.INFO)}
    assert settings.trusted_clients[0].iss == ISS
    for_client = settings.rule_settings_for(ISS)
    assert for_client["DN-SCOPE-001"] == RuleSetting(enabled=False)
    assert for_client["DN-DOC-010"] == RuleSetting(enabled=False)  # the global setting still holds
    assert for_client["DN-PAYER-002"].severity is Severity.CRITICAL  # the client's own wins
    assert "DN-SCOPE-001" not in settings.rule_settings_for(None)


@pytest.mark.parametrize(("text", "named"), [
    ('[rules."DN-NOPE-999"]\nenabled = false', 'rules."DN-NOPE-999"'),
    ('[rules."DN-DOC-010"]\nseverity = "fatal"', 'rules."DN-DOC-010".severity'),
    ('[rules."DN-DOC-010"]\nenabled = "no"', 'rules."DN-DOC-010".enabled'),
    ('[rules."DN-DOC-010"]\nmute = true', 'rules."DN-DOC-010".mute'),
    ('rules = 3', "'rules'"),
    (f'public_base_url = "{BASE}"\n[[trusted_clients]]\niss = "{ISS}"\njku = ["https://e.example/j"]\n'
     '[trusted_clients.rules."DN-XX-1"]\nenabled = false', 'trusted_clients[0].rules."DN-XX-1"'),
    ("suppress_overridden_days = -1", "suppress_overridden_days"),
    ('suppression_secret = "short"', "suppression_secret"),
])
def test_a_bad_rule_setting_names_the_file_and_key(tmp_path: Path, text: str, named: str) -> None:
    path = write_config(tmp_path, text)
    with pytest.raises(SettingsError) as raised:
        load_settings(path)
    assert str(path) in str(raised.value) and named in str(raised.value)


def test_serve_refuses_to_start_with_an_unknown_rule_id(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_config(tmp_path, '[rules."DN-NOPE-1"]\nenabled = false')
    assert main(["serve", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert str(path) in err and 'rules."DN-NOPE-1"\': unknown rule id' in err


def served(settings: Settings) -> Flask:
    return create_app(settings)


def without_coverage(request: dict[str, Any]) -> dict[str, Any]:
    """``request`` whose prefetch holds no Coverage, so that DN-PAYER-001 (payer not identified) fires."""
    empty = {"resourceType": "Bundle", "type": "searchset", "total": 0, "entry": []}
    return {**request, "prefetch": {**request["prefetch"], "coverage": empty}}


def test_a_disabled_rule_gives_no_card_and_a_severity_is_applied(tmp_path: Path) -> None:
    request = without_coverage(load("order-sign/code001-20561-two-muscles.json"))
    documented = RuleOptions(good_practice_elements=True)  # DN-DOC-010 cards only when the site asks for them
    plain = cards_by_rule(served(Settings(data_dir=tmp_path / "a", rule_options=documented)).test_client().post(
        ORDER_SIGN, json=request).get_json())
    assert plain == {"DN-CODE-001": "warning", "DN-DOC-010": "info", "DN-PAYER-001": "info"}
    settings = Settings(data_dir=tmp_path / "b", rule_options=documented, rules={
        "DN-DOC-010": RuleSetting(enabled=False), "DN-CODE-001": RuleSetting(severity=Severity.CRITICAL),
        "DN-PAYER-001": RuleSetting(severity=Severity.WARNING)})
    governed = served(settings).test_client().post(ORDER_SIGN, json=request).get_json()
    by_rule = cards_by_rule(governed)
    assert "DN-DOC-010" not in by_rule
    assert by_rule["DN-CODE-001"] == "critical"
    assert by_rule["DN-PAYER-001"] == "warning"
    critical = next(card for card in governed["cards"] if card["indicator"] == "critical")
    assert critical["overrideReasons"]  # a raised card can be overridden with a reason, as a warning can


def test_a_trusted_clients_rule_settings_apply_to_its_calls_only(tmp_path: Path) -> None:
    key = ec_key("ehr-1")
    other_key = ec_key("ehr-2")
    other = "https://other-ehr.example.org"
    settings = Settings(data_dir=tmp_path / "data", public_base_url=BASE,
                        trusted_clients=(TrustedClient(ISS, keys=(key.public_jwk,)),
                                         TrustedClient(other, keys=(other_key.public_jwk,))),
                        client_rules={ISS: {"DN-CODE-001": RuleSetting(enabled=False)}})
    http = served(settings).test_client()
    request = load("order-sign/code001-20561-two-muscles.json")

    def call(signing_key: Any, iss: str) -> dict[str | None, str]:
        token = mint(signing_key, claims(iss, BASE + ORDER_SIGN))
        answer = http.post(ORDER_SIGN, json=request, headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code == 200
        return cards_by_rule(answer.get_json())

    assert "DN-CODE-001" not in call(key, ISS)
    assert call(other_key, other)["DN-CODE-001"] == "warning"


def test_raising_a_rule_keeps_its_softer_reminders_soft_and_lowering_lowers_all() -> None:
    from needlecheck.plugin.findings import Finding, Topic

    rule = next(rule for rule in all_rules() if rule.rule_id == "DN-SCOPE-001")
    base = Finding(rule.rule_id, Severity.WARNING, Topic.CLAIM, "s", "d", "line-1", "order", ())
    reminder = replace(base, severity=Severity.INFO, line_key="line-2")
    raised = apply_rule_settings([base, reminder], {rule.rule_id: RuleSetting(severity=Severity.CRITICAL)})
    assert [f.severity for f in raised] == [Severity.CRITICAL, Severity.INFO]
    lowered = apply_rule_settings([base, reminder], {rule.rule_id: RuleSetting(severity=Severity.INFO)})
    assert [f.severity for f in lowered] == [Severity.INFO, Severity.INFO]


def test_rules_command_shows_the_effective_setting_of_each_rule(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    path = write_config(tmp_path, '[rules."DN-DOC-010"]\nenabled = false\n[rules."DN-PAYER-002"]\nseverity = "info"')
    assert main(["rules", "--config", str(path)]) == 0
    out = capsys.readouterr().out
    lines = {line.split()[0]: line for line in out.splitlines() if line.startswith("DN-")}
    assert "disabled" in lines["DN-DOC-010"]
    assert "info" in lines["DN-PAYER-002"] and "(configured)" in lines["DN-PAYER-002"]
    assert "enabled" in lines["DN-CODE-001"] and "warning" in lines["DN-CODE-001"]
    assert "family coding" in out
