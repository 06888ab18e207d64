"""report.html of a scan in headless Chromium: the charts and tables show the summary's numbers, with nothing
fetched from the network and no console error."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from playwright.sync_api import Browser

from needlecheck.cds_hooks.cli import main
from tests.support.browser import open_file
from tests.support.scan_export import request_resources, write_export

REQUESTS = Path(__file__).resolve().parent.parent / "fixtures" / "requests" / "claim-create"


def fixture_export(folder: Path) -> Path:
    """Every claim-create fixture with prefetch, each as a patient of its own."""
    resources: list[dict[str, Any]] = []
    for path in sorted(REQUESTS.glob("*.json")):
        body = json.loads(path.read_text(encoding="utf-8"))
        if body.get("prefetch"):
            patient = body["context"]["patientId"]
            resources += json.loads(json.dumps(request_resources(body)).replace(patient, f"{patient}-{path.stem}"))
    return write_export(folder, resources)


def test_report_renders_the_numbers_offline(browser: Browser, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert main(["scan", str(fixture_export(tmp_path / "export")), "--out", str(out), "--workers", "1"]) == 0
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["claims_with_warning"] >= 10

    opened = open_file(browser, out / "report.html")
    page = opened.page
    page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
    assert (tmp_path / "report.png").stat().st_size > 10_000
    assert opened.console_errors == []
    assert opened.network_requests == []

    assert page.text_content("#claims-read") == str(summary["claims_read"])
    assert page.text_content("#claims-at-risk") == str(summary["claims_with_warning"])
    share = f"{100 * summary['share_of_claims_at_risk']:.1f} %"
    assert page.text_content("#share-at-risk") == share
    total = summary["estimated_amount_at_risk"]["total_usd"]
    assert float(total) > 0
    assert page.text_content("#amount-at-risk") == f"${float(total):,.2f}"
    note = page.text_content("#estimate-note") or ""
    assert "Estimate" in note
    amount_table = page.text_content("#amount-table") or ""
    for figure in summary["estimated_amount_at_risk"]["by_figure"]:
        assert f"CY{figure['fee_year']}" in amount_table and figure["source_id"] in amount_table
        assert "estimate" in amount_table and figure["source_url"] in page.inner_html("#amount-table")

    for chart in ("share", "rule", "payer", "month"):
        box = page.locator(f"#chart-{chart} svg").bounding_box()
        assert box is not None and box["width"] > 300 and box["height"] > 50, chart
    rule_chart = page.text_content("#chart-rule svg") or ""
    rows = page.locator("#rule-table tbody tr")
    assert rows.count() == len(summary["findings_per_rule"])
    for rule, counts in summary["findings_per_rule"].items():
        assert rule in rule_chart
        row = page.locator("#rule-table tbody tr", has_text=rule)
        assert row.locator("td").all_text_contents() == [rule, str(counts.get("warning", 0)),
                                                          str(counts.get("info", 0))]
    payer_chart = page.text_content("#chart-payer svg") or ""
    assert all(payer in payer_chart for payer in summary["findings_per_payer_class"])
    month_chart = page.text_content("#chart-month svg") or ""
    assert all(month in month_chart for month in summary["findings_per_month"])

    top = page.locator("#top-claims tbody tr")
    assert top.count() == len(summary["top_claims"])
    assert summary["top_claims"][0]["claim_id"] in (top.first.text_content() or "")
