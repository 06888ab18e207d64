"""What one scanned claim yields: the rows of the biller's work list and the figures the summary adds up.

Rows follow the hook's cards, not the raw findings: a finding the card layer folds into another card
is not a second row, so the scan says exactly what ``claim-create`` would have shown.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from needlecheck.cds_hooks.cards import RULE_EXTENSION, card_uuid
from needlecheck.cds_hooks.invoke import Decision
from needlecheck.mappings.payment_figures import payment_figure_for
from needlecheck.plugin.context import BillingContext, ServiceLine
from needlecheck.plugin.payer import payer_of

CSV_COLUMNS = ("claim_id", "patient_id", "line", "service_date", "code", "payer", "rule_id", "severity", "summary",
               "suggested_code")


@dataclass
class ClaimOutcome:
    """The result of checking one claim (or of failing to: ``checked`` False, with the problem elsewhere)."""

    claim_id: str
    patient_id: str
    checked: bool = True
    has_dry_needling: bool = False
    payer_class: str = "unknown"
    payer: str = ""
    service_date: str | None = None
    rows: list[dict[str, Any]] = field(default_factory=list)
    # Estimated amount at risk by fee-schedule figure id (``code/setting/year``), and lines without a figure.
    at_risk: dict[str, Decimal] = field(default_factory=dict)
    at_risk_lines: dict[str, int] = field(default_factory=dict)
    at_risk_without_figure: int = 0
    unchecked: tuple[str, ...] = ()

    @property
    def warnings(self) -> int:
        """How many warning rows the claim has."""
        return sum(1 for row in self.rows if row["severity"] == "warning")

    @property
    def amount_at_risk(self) -> Decimal:
        """The claim's estimated amount at risk."""
        return sum(self.at_risk.values(), Decimal(0))


def _line_date(context: BillingContext, line: ServiceLine | None) -> dt.date | None:
    return context.date_of(line) if line is not None else None


def claim_outcome(claim_id: str, context: BillingContext, decision: Decision, hook_instance: str) -> ClaimOutcome:
    """The rows and figures of one claim from the hook's decision about it."""
    payer = payer_of(context)
    outcome = ClaimOutcome(claim_id=claim_id, patient_id=context.patient_id, payer_class=str(payer.payer_class),
                           payer=payer.name or str(payer.payer_class), unchecked=decision.unchecked,
                           has_dry_needling=bool(context.dry_needling_lines))
    findings = {card_uuid(hook_instance, f.rule_id, f.line_key): f for f in decision.findings if not f.unchecked}
    lines = {line.key: line for line in context.lines}
    at_risk_lines: dict[str, ServiceLine] = {}
    for card in decision.cards:
        finding = findings.get(card.get("uuid", ""))
        if finding is None or RULE_EXTENSION not in card.get("extension", {}):
            continue  # the "not checked" card: summarised from ``unchecked``
        line = lines.get(finding.line_key)
        day = _line_date(context, line)
        suggested = finding.fix.to_code if finding.fix is not None and card.get("suggestions") else ""
        outcome.rows.append({
            "claim_id": claim_id,
            "patient_id": context.patient_id,
            "line": line.item_sequence if line is not None else None,
            "service_date": day.isoformat() if day else None,
            "code": line.code if line is not None else None,
            "payer": outcome.payer,
            "rule_id": finding.rule_id,
            "severity": card["indicator"],
            "summary": card["summary"],
            "suggested_code": suggested,
            "payer_class": outcome.payer_class,
            "detail": card["detail"],
        })
        if card["indicator"] == "warning" and line is not None:
            at_risk_lines[line.key] = line
    outcome.has_dry_needling = outcome.has_dry_needling or bool(outcome.rows)
    dates = [d for d in (_line_date(context, line) for line in context.dry_needling_lines) if d]
    outcome.service_date = min(dates).isoformat() if dates else next(
        (row["service_date"] for row in outcome.rows if row["service_date"]), None)
    for line in at_risk_lines.values():
        figure = payment_figure_for(line.code, context.date_of(line))
        if figure is None:
            outcome.at_risk_without_figure += 1
            continue
        figure_id = f"{figure.code}/{figure.setting}/{figure.fee_year}"
        outcome.at_risk[figure_id] = outcome.at_risk.get(figure_id, Decimal(0)) + figure.amount
        outcome.at_risk_lines[figure_id] = outcome.at_risk_lines.get(figure_id, 0) + 1
    return outcome
