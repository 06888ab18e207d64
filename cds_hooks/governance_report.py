"""The alert-governance report's figures: per rule, per service and per week, from the audit log and feedback.

Per rule: cards shown, cards whose suggestion was accepted, cards overridden (with the override reasons and
their counts), the override rate (overridden / shown) and the cards repeat suppression held back. Per
service: calls by HTTP status, latency p50/p95 (``total_ms``), time spent waiting for the FHIR server, and
prefetch completeness (the share of usable prefetch keys the client satisfied itself). Per ISO week: calls,
cards shown, accepted, overridden and suppressed. ``needlecheck report`` writes these as ``summary.json`` and
renders them in ``index.html`` (``report_page.py``).
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections import Counter, defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Protocol

from needlecheck.cds_hooks.governance_data import ReportData
from needlecheck.plugin.rules import all_rules


def percentile(values: Iterable[float], share: float) -> float | None:
    """The nearest-rank percentile (``share`` in 0..1) of ``values``; None without values."""
    ordered = sorted(values)
    if not ordered:
        return None
    return round(ordered[max(0, math.ceil(share * len(ordered)) - 1)], 3)


def _reason_code(reason: dict[str, Any] | None) -> str:
    coding = (reason or {}).get("reason")
    if isinstance(coding, dict) and isinstance(coding.get("code"), str):
        return coding["code"]
    return "comment only" if reason else "no reason given"


def _week(moment: dt.datetime) -> str:
    year, week, _ = moment.astimezone(dt.UTC).isocalendar()
    return f"{year}-W{week:02d}"


def _instant(moment: dt.datetime | None) -> str | None:
    return moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z") if moment else None


def rule_rows(data: ReportData) -> list[dict[str, Any]]:
    """One row per rule that showed or was kept from showing a card in the window, by rule id."""
    shown = Counter(card.rule_id for card in data.issued)
    suppressed = Counter(rule for record in data.audit for rule in record.suppressed_rule_ids)
    accepted: dict[str, set[str]] = defaultdict(set)
    overridden: dict[str, set[str]] = defaultdict(set)
    reasons: dict[str, Counter[str]] = defaultdict(Counter)
    seen_reasons: set[tuple[str, str]] = set()
    for item in data.feedback:
        if item.outcome == "accepted":
            accepted[item.rule_id].add(item.card_uuid)
        elif item.outcome == "overridden":
            overridden[item.rule_id].add(item.card_uuid)
            code = _reason_code(item.override_reason)
            if (item.card_uuid, code) not in seen_reasons:  # a retried override counts once
                seen_reasons.add((item.card_uuid, code))
                reasons[item.rule_id][code] += 1
    rules = {rule.rule_id: rule for rule in all_rules()}
    rows = []
    for rule_id in sorted(set(shown) | set(suppressed)):
        rule = rules.get(rule_id)
        rows.append({
            "ruleId": rule_id, "title": rule.title if rule else "", "family": str(rule.family) if rule else "",
            "cardsShown": shown[rule_id], "accepted": len(accepted[rule_id]), "overridden": len(overridden[rule_id]),
            "overrideRate": round(len(overridden[rule_id]) / shown[rule_id], 4) if shown[rule_id] else None,
            "overrideReasons": dict(reasons[rule_id].most_common()), "suppressed": suppressed[rule_id],
        })
    return rows


def service_rows(data: ReportData) -> list[dict[str, Any]]:
    """One row per service called in the window."""
    by_service: dict[str, list[Any]] = defaultdict(list)
    for record in data.audit:
        by_service[record.service_id].append(record)
    rows = []
    for service_id in sorted(by_service):
        records = by_service[service_id]
        answered = [r for r in records if r.http_status == 200]
        with_prefetch = [r for r in answered if r.prefetch_keys]
        provided = sum(r.prefetch_provided or 0 for r in with_prefetch)
        usable = sum(r.prefetch_keys or 0 for r in with_prefetch)
        rows.append({
            "serviceId": service_id, "calls": len(records),
            "callsByStatus": {str(status): count for status, count in sorted(Counter(
                r.http_status for r in records).items())},
            "latencyMs": {"p50": percentile((r.total_ms for r in records if r.total_ms is not None), 0.5),
                          "p95": percentile((r.total_ms for r in records if r.total_ms is not None), 0.95)},
            "fhirMs": {"p50": percentile((r.fhir_ms for r in answered if r.fhir_ms is not None), 0.5),
                       "p95": percentile((r.fhir_ms for r in answered if r.fhir_ms is not None), 0.95)},
            "fhirRequests": sum(r.fhir_requests or 0 for r in answered),
            "prefetchCompleteness": round(provided / usable, 4) if usable else None,
        })
    return rows


def week_rows(data: ReportData) -> list[dict[str, Any]]:
    """Calls, cards shown, accepted, overridden and suppressed per ISO week (feedback by its card's week)."""
    weeks: dict[str, Counter[str]] = defaultdict(Counter)
    for record in data.audit:
        weeks[_week(record.recorded_at)]["calls"] += 1
        weeks[_week(record.recorded_at)]["suppressed"] += len(record.suppressed_rule_ids)
    week_of_card = {card.card_uuid: _week(card.issued_at) for card in data.issued}
    for card in data.issued:
        weeks[week_of_card[card.card_uuid]]["cardsShown"] += 1
    for outcome in ("accepted", "overridden"):
        for card_uuid in {item.card_uuid for item in data.feedback if item.outcome == outcome}:
            if card_uuid in week_of_card:
                weeks[week_of_card[card_uuid]][outcome] += 1
    keys = ("calls", "cardsShown", "accepted", "overridden", "suppressed")
    return [{"week": week, **{key: weeks[week][key] for key in keys}} for week in sorted(weeks)]


def build_summary(data: ReportData, since: dt.datetime | None, until: dt.datetime | None,
                  generated_at: dt.datetime | None = None) -> dict[str, Any]:
    """The report as ``summary.json`` holds it."""
    return {
        "generatedAt": _instant(generated_at or dt.datetime.now(dt.UTC)),
        "window": {"since": _instant(since), "until": _instant(until)},
        "empty": not data.audit and not data.issued,
        "totals": {"calls": len(data.audit), "cardsShown": len(data.issued),
                   "suppressed": sum(len(r.suppressed_rule_ids) for r in data.audit)},
        "rules": rule_rows(data),
        "services": service_rows(data),
        "weeks": week_rows(data),
    }


class ReportSource(Protocol):
    """A store the report can read (both backends are)."""

    def report_data(self, since: dt.datetime | None, until: dt.datetime | None) -> ReportData:
        """Audit records, shown cards and the feedback on them, recorded in [since, until)."""
        ...


def write_report(source: ReportSource, out_dir: Path, since: dt.datetime | None,
                 until: dt.datetime | None) -> dict[str, Any]:
    """Write ``out_dir/index.html`` and ``out_dir/summary.json``; returns the summary."""
    from needlecheck.cds_hooks.report_page import render_page  # matplotlib: only when a report is made

    summary = build_summary(source.report_data(since, until), since, until)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    (out_dir / "index.html").write_text(render_page(summary), encoding="utf-8")
    return summary
