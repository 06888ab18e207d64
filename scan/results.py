"""Writing a scan's results as they arrive: the work list files and the running totals of summary.json.

Only totals and the few claims worth fixing first stay in memory; rows go straight to disk.
"""

from __future__ import annotations

import csv
import heapq
import json
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

from needlecheck.mappings.payment_figures import payment_figures
from needlecheck.scan.outcome import CSV_COLUMNS, ClaimOutcome

TOP_CLAIMS = 25


def _money(amount: Decimal) -> str:
    return str(amount.quantize(Decimal("0.01")))


@dataclass
class Totals:
    """The running counts of a scan."""

    claims_read: int = 0
    claims_in_range: int = 0
    claims_without_dry_needling: int = 0
    claims_with_dry_needling: int = 0
    claims_checked: int = 0
    claims_not_checked: int = 0
    claims_with_warning: int = 0
    findings: int = 0
    by_rule: defaultdict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    by_payer_class: defaultdict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    by_month: defaultdict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    at_risk: defaultdict[str, Decimal] = field(default_factory=lambda: defaultdict(Decimal))
    at_risk_lines: Counter[str] = field(default_factory=Counter)
    at_risk_without_figure: int = 0
    not_checked: Counter[str] = field(default_factory=Counter)
    top: list[tuple[Any, ...]] = field(default_factory=list)

    def add(self, outcome: ClaimOutcome) -> None:
        """Count one claim's outcome."""
        if not outcome.checked:
            self.claims_not_checked += 1
            self.claims_with_dry_needling += 1
            return
        if not outcome.has_dry_needling:
            self.claims_without_dry_needling += 1
            return
        self.claims_with_dry_needling += 1
        self.claims_checked += 1
        self.not_checked.update(outcome.unchecked)
        payer = self.by_payer_class[outcome.payer_class]
        payer["claims"] += 1
        if outcome.warnings:
            self.claims_with_warning += 1
            payer["claims_with_warning"] += 1
        for row in outcome.rows:
            self.findings += 1
            severity = row["severity"]
            self.by_rule[row["rule_id"]][severity] += 1
            payer[severity] += 1
            month = (row["service_date"] or "unknown")[:7]
            self.by_month[month][severity] += 1
        for figure_id, amount in outcome.at_risk.items():
            self.at_risk[figure_id] += amount
            self.at_risk_lines[figure_id] += outcome.at_risk_lines[figure_id]
        self.at_risk_without_figure += outcome.at_risk_without_figure
        if outcome.warnings:
            rank = (outcome.amount_at_risk, outcome.warnings, outcome.claim_id)
            entry = (*rank, _top_entry(outcome))
            if len(self.top) < TOP_CLAIMS:
                heapq.heappush(self.top, entry)
            elif rank > self.top[0][:3]:
                heapq.heapreplace(self.top, entry)

    def summary(self) -> dict[str, Any]:
        """summary.json without the input description and the problems."""
        figures = {f"{f.code}/{f.setting}/{f.fee_year}": f for f in payment_figures()}
        amounts = []
        for figure_id, amount in sorted(self.at_risk.items()):
            figure = figures[figure_id]
            amounts.append({"code": figure.code, "fee_year": figure.fee_year, "setting": figure.setting,
                            "lines": self.at_risk_lines[figure_id], "payment_usd": _money(figure.amount),
                            "amount_usd": _money(amount), "basis": figure.basis, "kind": figure.kind,
                            "source_id": figure.source_id, "source_title": figure.source.title,
                            "source_url": figure.source.url, "confidence": figure.confidence})
        total = sum(self.at_risk.values(), Decimal(0))
        share = self.claims_with_warning / self.claims_checked if self.claims_checked else 0.0
        return {
            "claims_read": self.claims_read,
            "claims_in_range": self.claims_in_range,
            "claims_without_dry_needling": self.claims_without_dry_needling,
            "claims_with_dry_needling": self.claims_with_dry_needling,
            "claims_checked": self.claims_checked,
            "claims_not_checked": self.claims_not_checked,
            "claims_with_warning": self.claims_with_warning,
            "share_of_claims_at_risk": round(share, 4),
            "findings": self.findings,
            "findings_per_rule": {rule: dict(sorted(c.items())) for rule, c in sorted(self.by_rule.items())},
            "findings_per_payer_class": {name: dict(sorted(c.items()))
                                         for name, c in sorted(self.by_payer_class.items())},
            "findings_per_month": {month: dict(sorted(c.items())) for month, c in sorted(self.by_month.items())},
            "estimated_amount_at_risk": {
                "kind": "estimate",
                "currency": "USD",
                "total_usd": _money(total),
                "method": "each claim line with at least one warning counts once, at the sourced Medicare national "
                          "non-facility payment for its code in the fee-schedule year of its date of service",
                "by_figure": amounts,
                "lines_without_figure": self.at_risk_without_figure,
            },
            "not_checked": dict(self.not_checked.most_common()),
            "top_claims": [entry[3] for entry in sorted(self.top, reverse=True)],
        }


def _top_entry(outcome: ClaimOutcome) -> dict[str, Any]:
    warnings = [row for row in outcome.rows if row["severity"] == "warning"]
    return {"claim_id": outcome.claim_id, "patient_id": outcome.patient_id, "service_date": outcome.service_date,
            "payer": outcome.payer, "payer_class": outcome.payer_class, "warnings": len(warnings),
            "rules": sorted({row["rule_id"] for row in warnings}),
            "estimated_amount_usd": _money(outcome.amount_at_risk),
            "first_fix": warnings[0]["summary"] if warnings else ""}


class ResultFiles:
    """findings.csv and findings.ndjson, written row by row into the scan's work folder."""

    def __init__(self, folder: Path) -> None:
        self.csv_path = folder / "findings.csv"
        self.ndjson_path = folder / "findings.ndjson"
        self._csv: IO[str] = self.csv_path.open("w", newline="", encoding="utf-8")
        self._ndjson: IO[str] = self.ndjson_path.open("w", encoding="utf-8")
        self._writer = csv.DictWriter(self._csv, fieldnames=CSV_COLUMNS, extrasaction="ignore")
        self._writer.writeheader()

    def write(self, outcome: ClaimOutcome) -> None:
        """Append one claim's rows to both files."""
        for row in outcome.rows:
            self._writer.writerow(row)
            self._ndjson.write(json.dumps(row, ensure_ascii=False) + "\n")

    def close(self) -> None:
        """Flush and close both files."""
        self._csv.close()
        self._ndjson.close()
