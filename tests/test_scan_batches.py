"""How a scan's work is split and put back together: batches counted in the workers and merged in the scan's
process give the totals of one pass, the work list bytes are the rows, patients come in export order."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import random
from decimal import Decimal
from pathlib import Path

import pytest

from needlecheck.cds_hooks.cli import main
from needlecheck.mappings.payment_figures import payment_figures
from needlecheck.scan.ndjson_index import build_index, claim_patients, claims_in_range, open_index
from needlecheck.scan.outcome import CSV_COLUMNS, ClaimOutcome
from needlecheck.scan.problems import InputProblem, ProblemLog
from needlecheck.scan.results import TOP_CLAIMS, ResultFiles, Totals, batch_of
from needlecheck.scan.selection import DateRange
from tests.support.scan_export import write_export
from tests.test_scan import csv_rows, fixture_resources, summary_of, two_claim_export

RULES = ("DN-CODE-001", "DN-UNIT-001", "DN-DOC-002")


def outcomes(count: int, seed: int = 3) -> list[ClaimOutcome]:
    """Claims with and without warnings, over several months, payers and figures; a few not checked."""
    rng = random.Random(seed)
    figures = [f"{f.code}/{f.setting}/{f.fee_year}" for f in payment_figures()]
    made = []
    for number in range(count):
        claim_id = f"claim-{number}"
        if number % 17 == 0:
            made.append(ClaimOutcome(claim_id, "pat", checked=False, has_dry_needling=True))
            continue
        outcome = ClaimOutcome(claim_id, f"pat-{number % 7}", has_dry_needling=number % 11 != 0,
                               payer_class=rng.choice(("medicare-ffs", "commercial", "unknown")),
                               payer="Payer é", service_date=f"2026-0{rng.randint(1, 9)}-1{rng.randint(0, 9)}",
                               unchecked=("the NCCI table",) if number % 5 == 0 else ())
        for line in range(rng.randint(0, 3)):
            severity = rng.choice(("warning", "info"))
            outcome.rows.append({"claim_id": claim_id, "patient_id": outcome.patient_id, "line": line + 1,
                                 "service_date": outcome.service_date, "code": "20560", "payer": outcome.payer,
                                 "rule_id": rng.choice(RULES), "severity": severity, "summary": "a, \"quoted\" one",
                                 "suggested_code": "", "payer_class": outcome.payer_class, "detail": "line\nbreak"})
            if severity == "warning":
                figure = rng.choice(figures)
                outcome.at_risk[figure] = outcome.at_risk.get(figure, Decimal(0)) + Decimal("24.72")
                outcome.at_risk_lines[figure] = outcome.at_risk_lines.get(figure, 0) + 1
        made.append(outcome)
    return made


def test_batches_merged_give_the_totals_of_one_pass() -> None:
    claims = outcomes(400)
    one = Totals()
    for outcome in claims:
        one.add(outcome)
    assert one.claims_with_warning > TOP_CLAIMS  # the top list is cut, so merging must keep the right ones
    for seed in (1, 2):
        merged, rng, start = Totals(), random.Random(seed), 0
        while start < len(claims):
            size = rng.randint(1, 40)
            merged.merge(batch_of(claims[start:start + size], [], size).totals)
            start += size
        assert json.dumps(merged.summary(), default=str) == json.dumps(one.summary(), default=str)


def test_a_batch_carries_its_rows_as_the_work_list_files_bytes(tmp_path: Path) -> None:
    claims = outcomes(60)
    problem = InputProblem("missing-procedures", "Claim.ndjson", 3, "not checked")
    first, second = batch_of(claims[:25], [problem], 26, skipped=1), batch_of(claims[25:], [], 35)
    assert (first.problems, first.claims, first.totals.claims_without_dry_needling) == ([problem], 26, 1 + sum(
        1 for o in claims[:25] if o.checked and not o.has_dry_needling))
    files = ResultFiles(tmp_path)
    files.write(first)
    files.write(second)
    files.close()
    rows = [row for outcome in claims for row in outcome.rows]
    expected = io.StringIO()
    writer = csv.DictWriter(expected, fieldnames=CSV_COLUMNS, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    assert (tmp_path / "findings.csv").read_bytes() == expected.getvalue().encode("utf-8")
    lines = (tmp_path / "findings.ndjson").read_text(encoding="utf-8").splitlines()
    assert [json.loads(line) for line in lines] == rows


def test_a_claim_exported_twice_is_checked_twice_without_upsetting_the_top_claims(tmp_path: Path) -> None:
    export = two_claim_export(tmp_path / "export")
    miscoded = next(r for r in fixture_resources("code001-20560-four-muscles.json") if r["resourceType"] == "Claim")
    (export / "Claim.2.ndjson").write_text(json.dumps(miscoded) + "\n", encoding="utf-8")
    out = tmp_path / "out"
    assert main(["scan", str(export), "--out", str(out), "--workers", "1"]) == 0
    summary = summary_of(out)
    assert (summary["claims_read"], summary["claims_with_warning"]) == (3, 2)
    assert [top["claim_id"] for top in summary["top_claims"]] == [miscoded["id"]] * 2


def three_patient_export(folder: Path, created: dict[str, str] | None = None) -> Path:
    """The miscoded claim's patient three times over (``zed``, ``amy``, ``kim``: not in name order), each with
    resources of their own; ``created`` gives a patient's claim another creation date."""
    resources = []
    for name in ("zed", "amy", "kim"):
        text = json.dumps(fixture_resources("code001-20560-four-muscles.json")).replace('nc-', f'{name}-nc-')
        for resource in json.loads(text):
            if resource["resourceType"] == "Claim" and name in (created or {}):
                resource["created"] = (created or {})[name]
            resources.append(resource)
    return write_export(folder, resources)


def test_patients_are_checked_in_the_order_of_their_first_claim_in_the_export(tmp_path: Path) -> None:
    export = three_patient_export(tmp_path / "export")
    connection = open_index(tmp_path / "index.sqlite3")
    build_index(connection, export, ProblemLog())
    connection.close()
    with claim_patients(tmp_path / "index.sqlite3", 2) as chunks:
        assert list(chunks) == [["zed-nc-pat-1", "amy-nc-pat-1"], ["kim-nc-pat-1"]]
    out = tmp_path / "out"
    assert main(["scan", str(export), "--out", str(out), "--workers", "2"]) == 0
    assert list(dict.fromkeys(row["patient_id"] for row in csv_rows(out))) == \
        ["zed-nc-pat-1", "amy-nc-pat-1", "kim-nc-pat-1"]


@pytest.mark.parametrize("line", [b'{"resourceType": "Condition", "id": "c1", "code": NaN}',
                                  b'{"resourceType": "Condition", "id": "c1"} trailing',
                                  b'{"resourceType": "Condition", "id": "\xff\xfe"}'])
def test_a_line_that_is_not_strict_json_is_a_malformed_line(tmp_path: Path, line: bytes) -> None:
    export = two_claim_export(tmp_path / "export")
    (export / "Condition.2.ndjson").write_bytes(line + b"\n")
    out = tmp_path / "out"
    assert main(["scan", str(export), "--out", str(out), "--workers", "1"]) == 0
    [problem] = summary_of(out)["input_problems"]["listed"]
    assert (problem["kind"], problem["file"], problem["line"]) == ("malformed-line", "Condition.2.ndjson", 1)


def test_a_patient_without_a_claim_in_the_date_range_is_not_read(tmp_path: Path) -> None:
    export = three_patient_export(tmp_path / "export", {"zed": "2025-12-31", "kim": "2026-05"})
    connection = open_index(tmp_path / "index.sqlite3")
    build_index(connection, export, ProblemLog())
    assert claims_in_range(connection, DateRange(since=dt.date(2026, 1, 1))) == 1  # kim's date has no day
    assert claims_in_range(connection, DateRange(until=dt.date(2025, 12, 31))) == 1
    assert claims_in_range(connection, DateRange()) == 3
    connection.close()
    with claim_patients(tmp_path / "index.sqlite3", 10, DateRange(since=dt.date(2026, 1, 1))) as chunks:
        assert list(chunks) == [["amy-nc-pat-1"]]
    out = tmp_path / "out"
    assert main(["scan", str(export), "--out", str(out), "--workers", "2", "--since", "2026-01-01"]) == 0
    summary = summary_of(out)
    assert (summary["claims_read"], summary["claims_in_range"], summary["claims_checked"]) == (3, 1, 1)
    assert {row["patient_id"] for row in csv_rows(out)} == {"amy-nc-pat-1"}
