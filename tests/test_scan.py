"""``needlecheck scan``: bad input is reported and skipped, exit codes, atomic outputs, workers, date range."""

from __future__ import annotations

import copy
import csv
import gzip
import json
from pathlib import Path
from typing import Any

import pytest

from needlecheck.cds_hooks.cli import main
from needlecheck.scan.runner import OUTPUTS
from tests.support.scan_export import request_resources, write_export

REQUESTS = Path(__file__).resolve().parent.parent / "fixtures" / "requests" / "claim-create"


def fixture_resources(name: str) -> list[dict[str, Any]]:
    return request_resources(json.loads((REQUESTS / name).read_text(encoding="utf-8")))


def summary_of(out: Path) -> dict[str, Any]:
    return json.loads((out / "summary.json").read_text(encoding="utf-8"))


def csv_rows(out: Path) -> list[dict[str, str]]:
    with (out / "findings.csv").open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def two_claim_export(folder: Path) -> Path:
    """A clean claim and a miscoded one (DN-CODE-001) of patient nc-pat-1, in one export."""
    resources = fixture_resources("clean-20561-four-muscles-contained.json")
    resources += fixture_resources("code001-20560-four-muscles.json")
    return write_export(folder, resources)


def test_bad_input_is_reported_with_file_and_line_and_the_scan_goes_on(tmp_path: Path) -> None:
    export = two_claim_export(tmp_path / "export")
    # A malformed line in the middle of a file: the lines after it are still read.
    conditions = (export / "Condition.ndjson").read_text(encoding="utf-8").splitlines()
    (export / "Condition.ndjson").write_text("\n".join([conditions[0], '{"resourceType": "Condition", ',
                                                        *conditions[1:]]) + "\n", encoding="utf-8")
    # A Procedure inside a file of Claims, and a Claim whose billed Procedure is in no file.
    orphan = copy.deepcopy(json.loads((REQUESTS / "server-referenced-procedure.json").read_text())["context"]["claim"])
    orphan["id"] = "nc-claim-orphan"
    orphan["procedure"][0]["procedureReference"]["reference"] = "Procedure/nc-proc-not-exported"
    stray = {"resourceType": "Procedure", "id": "stray", "status": "completed", "subject": {"reference": "Patient/x"}}
    # A Claim that names no patient, and one that is not a valid FHIR Claim (a line sequence that is no number).
    nobody = {**copy.deepcopy(orphan), "id": "nc-claim-nobody"}
    del nobody["patient"]
    invalid = {**copy.deepcopy(orphan), "id": "nc-claim-invalid"}
    invalid["item"][0]["sequence"] = "first"
    with (export / "Claim.2.ndjson").open("w", encoding="utf-8") as handle:
        handle.write("".join(json.dumps(r) + "\n" for r in (stray, orphan, nobody, invalid)))
    # A file that cannot be read: a gzip file that is not gzip.
    (export / "Encounter.2.ndjson.gz").write_bytes(b"this is not gzip data at all")

    out = tmp_path / "out"
    assert main(["scan", str(export), "--out", str(out), "--workers", "1"]) == 0

    summary = summary_of(out)
    problems = {(p["kind"], p["file"], p["line"]) for p in summary["input_problems"]["listed"]}
    assert problems == {
        ("malformed-line", "Condition.ndjson", 2),
        ("wrong-resource-type", "Claim.2.ndjson", 1),
        ("missing-procedures", "Claim.2.ndjson", 2),
        ("claim-without-patient", "Claim.2.ndjson", 3),
        ("invalid-claim", "Claim.2.ndjson", 4),
        ("unreadable-file", "Encounter.2.ndjson.gz", None),
    }
    missing = next(p for p in summary["input_problems"]["listed"] if p["kind"] == "missing-procedures")
    assert "Procedure/nc-proc-not-exported" in missing["message"]
    assert summary["input_problems"]["by_kind"] == {"claim-without-patient": 1, "invalid-claim": 1,
                                                    "malformed-line": 1, "missing-procedures": 1,
                                                    "unreadable-file": 1, "wrong-resource-type": 1}
    assert (summary["claims_read"], summary["claims_checked"], summary["claims_not_checked"]) == (4, 2, 2)
    assert summary["claims_with_warning"] == 1
    assert [row["rule_id"] for row in csv_rows(out) if row["severity"] == "warning"] == ["DN-CODE-001"]


def test_a_truncated_gzip_file_is_reported_at_the_line_it_broke(tmp_path: Path) -> None:
    export = two_claim_export(tmp_path / "export")
    claims = (export / "Claim.ndjson").read_bytes()
    (export / "Claim.ndjson").unlink()
    (export / "Claim.ndjson.gz").write_bytes(gzip.compress(claims)[:-30])
    out = tmp_path / "out"
    assert main(["scan", str(export), "--out", str(out), "--workers", "1"]) == 0
    [problem] = summary_of(out)["input_problems"]["listed"]
    assert (problem["kind"], problem["file"]) == ("unreadable-file", "Claim.ndjson.gz")
    assert problem["line"] is not None


def test_nothing_readable_exits_1_and_keeps_the_previous_results(tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    assert main(["scan", str(two_claim_export(tmp_path / "good")), "--out", str(out), "--workers", "1"]) == 0
    before = (out / "findings.csv").read_bytes()
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "Claim.ndjson").write_text("not json\n{also not\n", encoding="utf-8")
    assert main(["scan", str(broken), "--out", str(out), "--workers", "1"]) == 1
    assert "nothing could be read" in capsys.readouterr().err
    assert (out / "findings.csv").read_bytes() == before
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["scan", str(empty), "--out", str(out), "--workers", "1"]) == 1


@pytest.mark.parametrize(("arguments", "named"), [
    (["--since", "2026-02-30"], "--since"),
    (["--since", "2026-05-01", "--until", "2026-04-01"], "--until"),
    (["--workers", "0"], "--workers"),
])
def test_bad_arguments_exit_2_naming_the_argument(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                  arguments: list[str], named: str) -> None:
    export = two_claim_export(tmp_path / "export")
    assert main(["scan", str(export), "--out", str(tmp_path / "out"), *arguments]) == 2
    assert named in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_bad_input_arguments_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["scan", str(tmp_path / "missing"), "--out", str(tmp_path / "out")]) == 2
    assert "INPUT" in capsys.readouterr().err
    assert main(["scan", "http://fhir.example.org/fhir", "--out", str(tmp_path / "out")]) == 2
    assert "https" in capsys.readouterr().err
    export = two_claim_export(tmp_path / "export")
    (tmp_path / "file").write_text("x", encoding="utf-8")
    assert main(["scan", str(export), "--out", str(tmp_path / "file")]) == 2
    assert "--out" in capsys.readouterr().err
    assert main(["scan", str(export), "--out", str(export)]) == 2
    with pytest.raises(SystemExit) as exited:
        main(["scan", str(export)])  # --out is required
    assert exited.value.code == 2


def test_a_second_run_replaces_the_files_and_writes_nothing_else(tmp_path: Path) -> None:
    parent = tmp_path / "results"
    parent.mkdir()
    out = parent / "scan"
    export = two_claim_export(tmp_path / "export")
    exported = sorted(p.name for p in export.iterdir())
    assert main(["scan", str(export), "--out", str(out), "--workers", "1"]) == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(OUTPUTS)
    first = summary_of(out)["generated_at"]
    (out / "findings.csv").write_text("stale", encoding="utf-8")
    assert main(["scan", str(export), "--out", str(out), "--workers", "1", "--since", "2026-04-09"]) == 0
    # Only the four files, each replaced; no work folder or index left; nothing beside DIR; input untouched.
    assert sorted(p.name for p in out.iterdir()) == sorted(OUTPUTS)
    assert [p.name for p in parent.iterdir()] == ["scan"]
    assert sorted(p.name for p in export.iterdir()) == exported
    assert (out / "findings.csv").read_text(encoding="utf-8").startswith("claim_id,patient_id,line,")
    assert summary_of(out)["generated_at"] >= first


def test_date_range_selects_claims_by_created(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    export = two_claim_export(tmp_path / "export")
    created = {c["id"]: c["created"] for c in (json.loads(line) for line in
                                               (export / "Claim.ndjson").read_text().splitlines())}
    assert created == {"nc-claim-0406a": "2026-04-07", "nc-claim-0408a": "2026-04-09"}
    out = tmp_path / "out"
    # Good-practice documentation makes each claim a finding, so the work list shows which claims were checked.
    config = tmp_path / "needlecheck.toml"
    config.write_text("[documentation]\ngood_practice_elements = true\n", encoding="utf-8")
    assert main(["scan", str(export), "--out", str(out), "--workers", "1", "--until", "2026-04-08",
                 "--config", str(config)]) == 0
    assert capfd.readouterr() == ("", "")  # not a terminal: no progress bar, nothing printed
    summary = summary_of(out)
    assert (summary["claims_read"], summary["claims_in_range"], summary["claims_checked"]) == (2, 1, 1)
    assert {row["claim_id"] for row in csv_rows(out)} == {"nc-claim-0406a"}


def test_worker_processes_give_the_same_files_as_one(tmp_path: Path) -> None:
    resources: list[dict[str, Any]] = []
    for path in sorted(REQUESTS.glob("*.json")):
        body = json.loads(path.read_text(encoding="utf-8"))
        if body.get("prefetch"):
            # Each fixture as a patient of its own, so the claims do not become each other's history.
            text = json.dumps(request_resources(body)).replace("nc-pat-1", f"pat-{path.stem}")
            resources += json.loads(text)
    export = write_export(tmp_path / "export", resources)
    assert main(["scan", str(export), "--out", str(tmp_path / "one"), "--workers", "1"]) == 0
    assert main(["scan", str(export), "--out", str(tmp_path / "two"), "--workers", "2"]) == 0
    one, two = summary_of(tmp_path / "one"), summary_of(tmp_path / "two")
    assert one["claims_checked"] == two["claims_checked"] >= 14
    assert (tmp_path / "one" / "findings.csv").read_bytes() == (tmp_path / "two" / "findings.csv").read_bytes()
    assert {k: v for k, v in one.items() if k not in ("input", "generated_at")} == \
        {k: v for k, v in two.items() if k not in ("input", "generated_at")}


def test_claims_without_dry_needling_are_counted_and_skipped(tmp_path: Path) -> None:
    resources = fixture_resources("code001-20560-four-muscles.json")
    exercise = copy.deepcopy(resources[0])
    exercise["id"] = "nc-claim-97110"
    exercise["item"] = [{**exercise["item"][0], "productOrService": {"coding": [
        {"system": "http://www.ama-assn.org/go/cpt", "code": "97110", "display": "Therapeutic exercise"}]}}]
    out = tmp_path / "out"
    assert main(["scan", str(write_export(tmp_path / "export", [*resources, exercise])), "--out", str(out),
                 "--workers", "1"]) == 0
    summary = summary_of(out)
    assert (summary["claims_read"], summary["claims_without_dry_needling"], summary["claims_checked"]) == (2, 1, 1)
    assert {row["claim_id"] for row in csv_rows(out)} == {"nc-claim-0408a"}


def test_estimated_amount_at_risk_uses_the_sourced_figure(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert main(["scan", str(two_claim_export(tmp_path / "export")), "--out", str(out), "--workers", "1"]) == 0
    amount = summary_of(out)["estimated_amount_at_risk"]
    assert (amount["kind"], amount["total_usd"]) == ("estimate", "24.72")
    [figure] = amount["by_figure"]
    assert (figure["code"], figure["fee_year"], figure["source_id"], figure["lines"]) == ("20560", 2026, "FE-05", 1)
    [top] = summary_of(out)["top_claims"]
    assert (top["claim_id"], top["estimated_amount_usd"], top["rules"]) == ("nc-claim-0408a", "24.72", ["DN-CODE-001"])
