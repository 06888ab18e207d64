"""``needlecheck scan https://…``: Claims searched by ``created`` on the real FHIR server, paged, and checked as
``claim-create`` checks them with that server as ``fhirServer``."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from needlecheck.cds_hooks.cli import main
from needlecheck.scan import server_claims
from tests.support.fhir_server import FhirTestServer
from tests.support.fixtures_fhir import FHIR_BUNDLE_PATH, read_bundle
from tests.test_scan_equivalence import checked_findings

REQUESTS = Path(__file__).resolve().parent.parent / "fixtures" / "requests"
MANIFEST: list[dict[str, Any]] = yaml.safe_load((REQUESTS / "manifest.yaml").read_text(encoding="utf-8"))
# Claims whose patient records are on the shared server's data (the Medicare patient has a bundle of its own).
ON_SERVER = [case["file"] for case in MANIFEST if case["hook"] == "claim-create" and not case.get("server_bundle")]


@pytest.fixture
def loaded_server(fresh_fhir_server: FhirTestServer) -> FhirTestServer:
    """The shared fixture data plus the Claims of the claim-create fixtures."""
    fresh_fhir_server.load(read_bundle(FHIR_BUNDLE_PATH))
    claims = [json.loads((REQUESTS / name).read_text(encoding="utf-8"))["context"]["claim"] for name in ON_SERVER]
    fresh_fhir_server.load({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": claim, "request": {"method": "PUT", "url": f"Claim/{claim['id']}"}} for claim in claims]})
    return fresh_fhir_server


def http_config(tmp_path: Path) -> Path:
    config = tmp_path / "config.toml"
    config.write_text("allow_http = true  # the test server speaks plain http\n", encoding="utf-8")
    return config


def test_scan_of_the_server_answers_as_the_hook_with_that_server(
        loaded_server: FhirTestServer, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(server_claims, "PAGE_SIZE", 4)  # several pages: the scan must follow ``next``
    monkeypatch.setenv("NEEDLECHECK_FHIR_TOKEN", loaded_server.token)
    expected: dict[str, list[tuple]] = {}
    for name in ON_SERVER:
        body = copy.deepcopy(json.loads((REQUESTS / name).read_text(encoding="utf-8")))
        body.pop("prefetch", None)  # what the hook does with no prefetch: read everything from the server
        body["fhirServer"] = loaded_server.base_url
        body["fhirAuthorization"] = {"access_token": loaded_server.token, "token_type": "Bearer"}
        expected[body["context"]["claim"]["id"]] = checked_findings(body, tmp_path, capsys)

    out = tmp_path / "out"
    assert main(["scan", loaded_server.base_url, "--out", str(out), "--workers", "1",
                 "--config", str(http_config(tmp_path))]) == 0

    rows = [json.loads(line) for line in (out / "findings.ndjson").read_text(encoding="utf-8").splitlines()]
    scanned = {claim_id: sorted((r["rule_id"], r["severity"], r["summary"], r["suggested_code"])
                                for r in rows if r["claim_id"] == claim_id) for claim_id in expected}
    assert scanned == expected
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["input"]["kind"] == "fhir-server"
    assert (summary["claims_read"], summary["claims_checked"]) == (len(ON_SERVER), len(ON_SERVER))
    assert summary["input_problems"]["total"] == 0
    assert loaded_server.token not in json.dumps(summary)


def test_scan_of_the_server_searches_the_date_range(loaded_server: FhirTestServer, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEEDLECHECK_FHIR_TOKEN", loaded_server.token)
    created = {json.loads((REQUESTS / name).read_text())["context"]["claim"]["created"] for name in ON_SERVER}
    day = sorted(created)[len(created) // 2]
    out = tmp_path / "out"
    assert main(["scan", loaded_server.base_url, "--out", str(out), "--workers", "1", "--since", day,
                 "--until", day, "--config", str(http_config(tmp_path))]) == 0
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    on_day = [name for name in ON_SERVER
              if json.loads((REQUESTS / name).read_text())["context"]["claim"]["created"] == day]
    assert summary["claims_read"] == summary["claims_checked"] == len(on_day) >= 1


def test_a_server_that_refuses_the_token_exits_1(loaded_server: FhirTestServer, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("NEEDLECHECK_FHIR_TOKEN", "not-the-token")
    assert main(["scan", loaded_server.base_url, "--out", str(tmp_path / "out"),
                 "--config", str(http_config(tmp_path))]) == 1
    error = capsys.readouterr().err
    assert "HTTP 401" in error and "not-the-token" not in error
