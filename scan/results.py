"""A scan's results: the running totals of summary.json, each batch's rows, and the work list files.

A worker turns a batch of claims into a ``Batch`` (its totals, and its rows already formatted as the bytes of
``findings.csv`` and ``findings.ndjson``); the scan's own process only merges totals and appends bytes, so it
stays a small share of the scan's CPU however many workers feed it. Only totals and the few claims worth
fixing first stay in memory; rows go straight to disk.
"""

from __future__ import annotations

import csv
import heapq
import io
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

import orjson

from needlecheck.mappings.payment_figures import payment_figures
from needlecheck.scan.outcome import CSV_COLUMNS, ClaimOutcome
from needlecheck.scan.problems import InputProblem

TOP_CLAIMS = 25
_BUFFER = 1 << 20  # the work list files are appended to in batches: one write call per megabyte


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
            entry = _top_entry(outcome)
            # The entry's JSON breaks a tie of rank (a claim exported twice): the order stays total, and the same
            # whichever worker checked which claim.
            self._keep((outcome.amount_at_risk, outcome.warnings, outcome.claim_id, orjson.dumps(entry,
                        option=orjson.OPT_SORT_KEYS), entry))

    def _keep(self, entry: tuple[Any, ...]) -> None:
        if len(self.top) < TOP_CLAIMS:
            heapq.heappush(self.top, entry)
        elif entry[:4] > self.top[0][:4]:
            heapq.heapreplace(self.top, entry)

    def merge(self, other: Totals) -> None:
        """Add ``other``'s counts (a worker's batch) to these; the result does not depend on how claims were
        split into batches."""
        for name in ("claims_read", "claims_in_range", "claims_without_dry_needling", "claims_with_dry_needling",
                     "claims_checked", "claims_not_checked", "claims_with_warning", "findings",
                     "at_risk_without_figure"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for mine, theirs in ((self.by_rule, other.by_rule), (self.by_payer_class, other.by_payer_class),
                             (self.by_month, other.by_month)):
            for key, counts in theirs.items():
                mine[key].update(counts)
        for figure_id, amount in other.at_risk.items():
            self.at_risk[figure_id] += amount
        self.at_risk_lines.update(other.at_risk_lines)
        self.not_checked.update(other.not_checked)
        for entry in other.top:
            self._keep(entry)

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
            "top_claims": [entry[-1] for entry in sorted(self.top, key=lambda e: e[:4], reverse=True)],
        }


def _top_entry(outcome: ClaimOutcome) -> dict[str, Any]:
    warnings = [row for row in outcome.rows if row["severity"] == "warning"]
    return {"claim_id": outcome.claim_id, "patient_id": outcome.patient_id, "service_date": outcome.service_date,
            "payer": outcome.payer, "payer_class": outcome.payer_class, "warnings": len(warnings),
            "rules": sorted({row["rule_id"] for row in warnings}),
            "estimated_amount_usd": _money(outcome.amount_at_risk),
            "first_fix": warnings[0]["summary"] if warnings else ""}


@dataclass
class Batch:
    """What a worker hands back for a batch of claims: totals, problems and the rows as file bytes."""

    totals: Totals = field(default_factory=Totals)
    problems: list[InputProblem] = field(default_factory=list)
    csv: bytes = b""
    ndjson: bytes = b""
    claims: int = 0  # Claims in the date range it covers: how far the progress bar moves
    out_of_range: int = 0  # Claims it read that were created outside the date range


def batch_of(outcomes: Iterable[ClaimOutcome], problems: list[InputProblem], claims: int, skipped: int = 0,
             out_of_range: int = 0) -> Batch:
    """Count and format the outcomes of a batch of claims (in a worker: the scan's process only merges)."""
    batch = Batch(problems=problems, claims=claims, out_of_range=out_of_range)
    batch.totals.claims_without_dry_needling += skipped
    text, ndjson = io.StringIO(), bytearray()
    writer = csv.DictWriter(text, fieldnames=CSV_COLUMNS, extrasaction="ignore")
    for outcome in outcomes:
        batch.totals.add(outcome)
        for row in outcome.rows:
            writer.writerow(row)
            ndjson += orjson.dumps(row)
            ndjson += b"\n"
    batch.csv, batch.ndjson = text.getvalue().encode("utf-8"), bytes(ndjson)
    return batch


class ResultFiles:
    """findings.csv and findings.ndjson in the scan's work folder, appended to batch by batch, in order."""

    def __init__(self, folder: Path) -> None:
        self.csv_path = folder / "findings.csv"
        self.ndjson_path = folder / "findings.ndjson"
        self._csv: IO[bytes] = self.csv_path.open("wb", buffering=_BUFFER)
        self._ndjson: IO[bytes] = self.ndjson_path.open("wb", buffering=_BUFFER)
        header = io.StringIO()
        csv.writer(header).writerow(CSV_COLUMNS)
        self._csv.write(header.getvalue().encode("utf-8"))

    def write(self, batch: Batch) -> None:
        """Append one batch's rows to both files."""
        self._csv.write(batch.csv)
        self._ndjson.write(batch.ndjson)

    def close(self) -> None:
        """Flush and close both files."""
        self._csv.close()
        self._ndjson.close()
