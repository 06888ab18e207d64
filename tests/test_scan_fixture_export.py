"""The README's scan of the shipped synthetic export: every seeded defect is caught, the rest adds up."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from needlecheck.cds_hooks.cli import main

EXPORT = Path(__file__).resolve().parent.parent / "fixtures" / "bulk-export"


def test_scan_of_the_shipped_export_catches_every_seeded_defect(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert main(["scan", str(EXPORT), "--out", str(out), "--workers", "2"]) == 0
    with (out / "findings.csv").open(newline="", encoding="utf-8") as handle:
        warnings = {(row["claim_id"], row["rule_id"]) for row in csv.DictReader(handle) if row["severity"] == "warning"}
    with (EXPORT / "seeded.csv").open(newline="", encoding="utf-8") as handle:
        seeded = [(row["claim_id"], row["rule_id"]) for row in csv.DictReader(handle)]
    assert len(seeded) >= 40
    assert [defect for defect in seeded if defect not in warnings] == []

    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["claims_read"] == 300
    assert summary["claims_without_dry_needling"] + summary["claims_checked"] == 300
    assert summary["input_problems"]["total"] == 0
    assert summary["claims_with_warning"] >= len({claim for claim, _ in seeded})
    assert set(summary["findings_per_payer_class"]) == {"commercial", "medicare-advantage", "medicare-ffs",
                                                        "unknown", "workers-comp"}
    assert float(summary["estimated_amount_at_risk"]["total_usd"]) > 0
