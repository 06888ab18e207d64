"""``needlecheck report``: figures from a seeded database on both backends, rendered in a real browser."""

from __future__ import annotations

import copy
import datetime as dt
import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser

from needlecheck.cds_hooks.app import create_app
from needlecheck.cds_hooks.cli import main
from needlecheck.cds_hooks.governance_report import percentile
from tests.support.browser import open_file

REQUESTS = Path(__file__).resolve().parent.parent / "fixtures" / "requests"
ORDER_SIGN = "/cds-services/dry-needling-order-sign"
SECRET = "report-test-secret-0123456789abcdef"


def write_config(tmp_path: Path, database_url: str | None) -> Path:
    lines = [f'data_dir = "{tmp_path / "data"}"', "suppress_overridden_days = 30", f'suppression_secret = "{SECRET}"']
    if database_url:
        lines.append(f'database_url = "{database_url}"')
    # DN-DOC-010 (good-practice documentation) gives cards only when the site asks for them.
    lines += ["[documentation]", "good_practice_elements = true"]
    path = tmp_path / "needlecheck.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def order(patient: str) -> dict[str, Any]:
    """The two-muscle 20561 order for ``patient``, without Coverage: DN-CODE-001, DN-DOC-010 and DN-PAYER-001."""
    request = copy.deepcopy(json.loads((REQUESTS / "order-sign/code001-20561-two-muscles.json").read_text("utf-8")))
    request["prefetch"]["coverage"] = {"resourceType": "Bundle", "type": "searchset", "total": 0, "entry": []}
    request["hookInstance"] = str(uuid.uuid4())
    request["context"]["patientId"] = patient
    return request


def card(body: dict[str, Any], rule_id: str) -> dict[str, Any]:
    return next(c for c in body["cards"] if c.get("extension", {}).get("org.needlecheck.rule-id") == rule_id)


def seed(config: Path) -> None:
    """Four answered calls (one with two cards suppressed as repeats), one refused call, and feedback."""
    from needlecheck.cds_hooks.settings import load_settings

    application = create_app(load_settings(config))
    http = application.test_client()
    now = dt.datetime.now(dt.UTC).isoformat().replace("+00:00", "Z")
    answers = {patient: http.post(ORDER_SIGN, json=order(patient)).get_json() for patient in ("p-a", "p-b", "p-c")}
    code_a = card(answers["p-a"], "DN-CODE-001")
    feedback = [
        {"card": code_a["uuid"], "outcome": "accepted", "outcomeTimestamp": now,
         "acceptedSuggestions": [{"id": code_a["suggestions"][0]["uuid"]}]},
        {"card": card(answers["p-b"], "DN-CODE-001")["uuid"], "outcome": "overridden", "outcomeTimestamp": now,
         "overrideReason": {"reason": {"system": "urn:needlecheck:override-reason", "code": "clinical-judgement"}}},
        {"card": card(answers["p-c"], "DN-CODE-001")["uuid"], "outcome": "overridden", "outcomeTimestamp": now,
         "overrideReason": {"reason": {"system": "urn:needlecheck:override-reason", "code": "payer-instruction"}}},
        {"card": card(answers["p-b"], "DN-DOC-010")["uuid"], "outcome": "overridden", "outcomeTimestamp": now,
         "overrideReason": {"userComment": "documented in the paper chart"}},
    ]
    assert http.post(f"{ORDER_SIGN}/feedback", json={"feedback": feedback}).get_json()["stored"] == 4
    repeat = http.post(ORDER_SIGN, json=order("p-b")).get_json()
    assert {c.get("extension", {}).get("org.needlecheck.rule-id") for c in repeat["cards"]} & {
        "DN-CODE-001", "DN-DOC-010"} == set()
    assert http.post(ORDER_SIGN, json={"hook": "order-sign"}).status_code == 400
    application.extensions["needlecheck.pool"].shutdown(wait=False)
    application.extensions["needlecheck.store"].close()


@pytest.fixture(params=["sqlite", "postgres"])
def seeded(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    url = request.getfixturevalue("postgres_url") if request.param == "postgres" else None
    config = write_config(tmp_path, url)
    seed(config)
    return config


def rule_row(summary: dict[str, Any], rule_id: str) -> dict[str, Any]:
    return next(row for row in summary["rules"] if row["ruleId"] == rule_id)


def test_the_summary_holds_the_seeded_numbers(seeded: Path, tmp_path: Path) -> None:
    out = tmp_path / "report"
    assert main(["report", "--out", str(out), "--config", str(seeded)]) == 0
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["empty"] is False
    code = rule_row(summary, "DN-CODE-001")
    assert (code["cardsShown"], code["accepted"], code["overridden"], code["suppressed"]) == (3, 1, 2, 1)
    assert code["overrideRate"] == pytest.approx(2 / 3, abs=1e-4)
    assert code["overrideReasons"] == {"clinical-judgement": 1, "payer-instruction": 1}
    assert code["family"] == "coding"
    documentation = rule_row(summary, "DN-DOC-010")
    assert (documentation["cardsShown"], documentation["overridden"], documentation["suppressed"]) == (3, 1, 1)
    assert documentation["overrideReasons"] == {"comment only": 1}
    assert rule_row(summary, "DN-PAYER-001")["cardsShown"] == 4
    (service,) = summary["services"]
    assert service["serviceId"] == "dry-needling-order-sign"
    assert service["callsByStatus"] == {"200": 4, "400": 1}
    assert service["latencyMs"]["p50"] > 0 and service["latencyMs"]["p95"] >= service["latencyMs"]["p50"]
    assert service["prefetchCompleteness"] == 1.0  # the fixture prefetches every key it can use
    (week,) = summary["weeks"]
    assert (week["calls"], week["cardsShown"], week["accepted"], week["overridden"], week["suppressed"]) == (
        5, 10, 1, 3, 2)
    assert summary["totals"] == {"calls": 5, "cardsShown": 10, "suppressed": 2}


def test_the_page_renders_the_seeded_numbers_offline(seeded: Path, tmp_path: Path, browser: Browser) -> None:
    out = tmp_path / "report"
    assert main(["report", "--out", str(out), "--config", str(seeded)]) == 0
    opened = open_file(browser, out / "index.html")
    page = opened.page
    for chart in ("rules", "override-rate", "status", "trend"):
        svg = page.locator(f'svg[data-chart="{chart}"]')
        assert svg.count() == 1, chart
        box = svg.bounding_box()
        assert box is not None and box["width"] > 200 and box["height"] > 50, chart
    rules_chart = page.locator('svg[data-chart="rules"]').text_content() or ""
    assert "DN-CODE-001" in rules_chart and "DN-DOC-010" in rules_chart
    assert "67 %" in (page.locator('svg[data-chart="override-rate"]').text_content() or "")
    row = page.locator("#rules tbody tr", has_text="DN-CODE-001")
    assert [cell.strip() for cell in row.locator("td").all_inner_texts()][:7] == [
        "DN-CODE-001", "coding", "3", "1", "2", "67 %", "1"]
    assert "clinical-judgement: 1" in row.inner_text() and "payer-instruction: 1" in row.inner_text()
    service = page.locator("#services tbody tr").first.inner_text()
    assert "200: 4, 400: 1" in service and "100 %" in service
    # Sorting: clicking "shown" twice puts the rule with the most cards (DN-PAYER-001, 4) first.
    header = page.locator("#rules th", has_text="shown")
    header.click()
    header.click()
    assert page.locator("#rules tbody tr").first.locator("td").first.inner_text() == "DN-PAYER-001"
    assert header.get_attribute("aria-sort") == "descending"
    page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
    assert (tmp_path / "report.png").stat().st_size > 10_000
    assert opened.console_errors == []
    assert opened.network_requests == []
    page.context.close()


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_an_empty_database_gives_a_valid_page_that_says_so(backend: str, tmp_path: Path, browser: Browser,
                                                           request: pytest.FixtureRequest) -> None:
    url = request.getfixturevalue("postgres_url") if backend == "postgres" else None
    out = tmp_path / "report"
    assert main(["report", "--out", str(out), "--config", str(write_config(tmp_path, url))]) == 0
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["empty"] is True and summary["rules"] == [] and summary["totals"]["calls"] == 0
    opened = open_file(browser, out / "index.html")
    assert "nothing to report" in opened.page.locator("#empty").inner_text()
    assert opened.page.locator("svg").count() == 0
    assert opened.console_errors == [] and opened.network_requests == []
    opened.page.context.close()


def test_the_window_excludes_what_lies_outside_it(seeded: Path, tmp_path: Path) -> None:
    out = tmp_path / "report"
    assert main(["report", "--out", str(out), "--config", str(seeded), "--until", "2020-01-01"]) == 0
    assert json.loads((out / "summary.json").read_text(encoding="utf-8"))["empty"] is True


@pytest.mark.parametrize(("argv", "named"), [
    (["--since", "yesterday"], "--since"),
    (["--since", "2026-02-01", "--until", "2026-01-01"], "--since"),
])
def test_bad_dates_exit_2_naming_the_option(tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str],
                                            named: str) -> None:
    assert main(["report", "--out", str(tmp_path / "r"), *argv]) == 2
    assert named in capsys.readouterr().err


def test_percentile_is_nearest_rank() -> None:
    assert percentile([], 0.5) is None
    assert percentile([5, 1, 3, 2, 4], 0.5) == 3
    assert percentile(range(1, 101), 0.95) == 95
