"""``needlecheck scan`` answers as ``claim-create`` does: every claim-create fixture through both, same findings.

Each fixture's Claim and prefetch resources are written as a Bulk Data export (NDJSON, some gzipped) and
scanned; the same fixture goes through ``needlecheck check``. The fixture that needs a FHIR server is
checked against the suite's server and scanned from an export of that server's data.
"""

from __future__ import annotations

import copy
import gzip
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from needlecheck.cds_hooks.cards import RULE_EXTENSION
from needlecheck.cds_hooks.cli import main
from tests.support.fhir_server import FhirTestServer
from tests.support.fixtures_fhir import FHIR_BUNDLE_PATH, read_bundle
from tests.support.scan_export import request_resources, write_export

REQUESTS = Path(__file__).resolve().parent.parent / "fixtures" / "requests"
MANIFEST: list[dict[str, Any]] = yaml.safe_load((REQUESTS / "manifest.yaml").read_text(encoding="utf-8"))
CLAIM_CASES = [case for case in MANIFEST if case["hook"] == "claim-create"]


def checked_findings(body: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> list[tuple]:
    """(rule, indicator, summary, suggested code) of every rule card ``needlecheck check`` prints."""
    request = tmp_path / "request.json"
    request.write_text(json.dumps(body), encoding="utf-8")
    capsys.readouterr()
    assert main(["check", str(request)]) == 0
    cards = json.loads(capsys.readouterr().out)["cards"]
    found = []
    for card in cards:
        if RULE_EXTENSION not in card.get("extension", {}):
            continue
        # A suggestion is labelled "Change 20560 to 20561" or "Bill lines 1 and 2 as one 20561 line".
        suggested = re.findall(r"\b\d{5}\b", card["suggestions"][0]["label"])[-1] if card.get("suggestions") else ""
        found.append((card["extension"][RULE_EXTENSION], card["indicator"], card["summary"], suggested))
    return sorted(found)


def scanned_findings(out: Path) -> list[tuple]:
    rows = [json.loads(line) for line in (out / "findings.ndjson").read_text(encoding="utf-8").splitlines()]
    return sorted((row["rule_id"], row["severity"], row["summary"], row["suggested_code"]) for row in rows)


def _gzip_one(folder: Path, name: str) -> None:
    # An export may compress any of its files; the scan reads both forms.
    path = folder / name
    if path.exists():
        (folder / f"{name}.gz").write_bytes(gzip.compress(path.read_bytes()))
        path.unlink()


@pytest.mark.parametrize("case", CLAIM_CASES, ids=[case["file"] for case in CLAIM_CASES])
def test_scan_finds_what_check_finds(case: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                     fhir_server: FhirTestServer) -> None:
    body = json.loads((REQUESTS / case["file"]).read_text(encoding="utf-8"))
    resources = request_resources(body)
    if case.get("needs_fhir_server"):
        body = copy.deepcopy(body)
        body["fhirServer"] = fhir_server.base_url
        body["fhirAuthorization"] = {"access_token": fhir_server.token, "token_type": "Bearer"}
        resources += [entry["resource"] for entry in read_bundle(FHIR_BUNDLE_PATH)["entry"]]
    export = write_export(tmp_path / "export", resources)
    _gzip_one(export, "Procedure.ndjson")
    _gzip_one(export, "Condition.ndjson")

    expected = checked_findings(body, tmp_path, capsys)
    assert main(["scan", str(export), "--out", str(tmp_path / "out"), "--workers", "1"]) == 0

    assert scanned_findings(tmp_path / "out") == expected
    assert [f[0] for f in expected if f[1] == "warning"] == sorted(case["expect_rules"])
    summary = json.loads((tmp_path / "out" / "summary.json").read_text(encoding="utf-8"))
    assert (summary["claims_read"], summary["claims_checked"]) == (1, 1)
    assert summary["claims_with_warning"] == (1 if case["expect_rules"] else 0)
    assert summary["input_problems"]["total"] == 0
