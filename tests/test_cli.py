"""The ``needlecheck`` command line: check's exit codes and messages, rules, and serve's refusals."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from needlecheck.cds_hooks.cli import main

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "requests"


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_check_prints_the_response(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["check", str(FIXTURES / "order-sign/code001-20561-two-muscles.json")], capsys)
    assert code == 0
    assert json.loads(out)["cards"][0]["extension"]["org.needlecheck.rule-id"] == "DN-CODE-001"


@pytest.mark.parametrize(("content", "message"), [
    ("{not json", "not valid JSON"),
    ('{"hook": "patient-view"}', "field 'hook'"),
    ('{"hook": "order-sign", "hookInstance": "x", "context": {"userId": "Practitioner/1"}}', "context.patientId"),
])
def test_invalid_input_exits_2_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str,
                                             message: str) -> None:
    request = tmp_path / "request.json"
    request.write_text(content, encoding="utf-8")
    code, out, err = run(["check", str(request)], capsys)
    assert code == 2 and out == ""
    assert message in err and err.count("\n") == 1


def test_missing_file_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["check", "/nonexistent/request.json"], capsys)
    assert code == 2 and "cannot read" in err


def test_a_claim_whose_procedures_cannot_be_had_exits_3(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["check", str(FIXTURES / "claim-create/server-referenced-procedure.json")], capsys)
    assert code == 3
    assert "Procedure/nc-proc-20560-20260302" in err


def test_rules_lists_every_rule_with_sources(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["rules"], capsys)
    assert code == 0
    for rule_id in ("DN-CODE-001", "DN-CODE-002", "DN-CODE-003", "DN-CODE-004", "DN-UNIT-001", "DN-DOC-001"):
        assert rule_id in out
    assert "https://" in out


def test_rules_names_the_missing_data_sets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("NEEDLECHECK_DATASETS_DIR", str(tmp_path))
    code, out, _ = run(["rules"], capsys)
    assert code == 0
    assert "data set ncci-mue-practitioner: MISSING" in out
    missing = out.split("Missing data sets", 1)[1]
    assert all(f"  {name}:" in missing for name in ("ncci-ptp-practitioner", "ncci-mue-practitioner",
                                                     "ncd-30.3.3-icd10"))


def test_rules_reports_installed_data_sets(capsys: pytest.CaptureFixture[str]) -> None:
    # tests/conftest.py installs the sample data sets of tests/data for every test.
    code, out, _ = run(["rules"], capsys)
    assert code == 0
    assert "data set ncci-mue-practitioner: installed" in out and "Missing data sets" not in out


def test_a_malformed_data_set_stops_the_command_naming_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "ncd-30.3.3-icd10"
    folder.mkdir()
    (folder / "list.csv").write_text("NCD,ICD-10 Code,Description,Effective Date\n30.3.3,M54.50,x,not-a-date\n",
                                     encoding="utf-8")
    monkeypatch.setenv("NEEDLECHECK_DATASETS_DIR", str(tmp_path))
    code, _, err = run(["rules"], capsys)
    assert code == 2 and "list.csv" in err


def test_serve_refuses_a_public_address_without_trusted_clients(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["serve", "--host", "0.0.0.0", "--port", "8999"], capsys)
    assert code == 2 and "--insecure" in err


def test_bad_config_file_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "needlecheck.toml"
    config.write_text("port = 'eighty'\n", encoding="utf-8")
    code, _, err = run(["serve", "--config", str(config)], capsys)
    assert code == 2 and "port" in err
