"""The governance report as one self-contained HTML page: inline SVG charts (matplotlib) and sortable tables.

Nothing on the page loads from anywhere: the charts are SVG elements in the page, the style and the few lines
of table-sorting script are inline, and the page links to nothing. Each chart's element ids are prefixed with
its own name, so the clip paths of one SVG cannot capture another's.
"""

from __future__ import annotations

import io
import re
from typing import Any

import matplotlib

matplotlib.use("svg")  # no display, no GUI toolkit: the report runs on servers

import matplotlib.pyplot as plt  # after choosing the backend
from jinja2 import Environment

plt.rcParams.update({"svg.fonttype": "none", "font.size": 9, "figure.dpi": 96})

_COLOURS = {"cardsShown": "#4e79a7", "accepted": "#59a14f", "overridden": "#e15759", "suppressed": "#bab0ac",
            "calls": "#76b7b2"}
_LABELS = {"cardsShown": "cards shown", "accepted": "accepted", "overridden": "overridden",
           "suppressed": "suppressed", "calls": "calls"}


def _svg(figure: Any, name: str, title: str) -> str:
    """The figure as an inline ``<svg>`` with ids prefixed by ``name`` and an accessible title."""
    plt.rcParams["svg.hashsalt"] = name
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None})
    plt.close(figure)
    text = buffer.getvalue()
    text = text[text.index("<svg"):]  # no XML declaration or DOCTYPE inside HTML
    text = re.sub(r'(id="|url\(#|href="#)([^")]+)', lambda m: f"{m.group(1)}{name}-{m.group(2)}", text)
    return text.replace("<svg ", f'<svg role="img" aria-label="{title}" data-chart="{name}" ', 1)


def rules_chart(rules: list[dict[str, Any]]) -> str:
    """Grouped horizontal bars per rule: shown, accepted, overridden, suppressed."""
    keys = ("cardsShown", "accepted", "overridden", "suppressed")
    figure, axes = plt.subplots(figsize=(7.5, 0.55 * len(rules) + 1.2))
    height = 0.8 / len(keys)
    for index, key in enumerate(keys):
        positions = [row + index * height for row in range(len(rules))]
        bars = axes.barh(positions, [rule[key] for rule in rules], height, label=_LABELS[key], color=_COLOURS[key])
        axes.bar_label(bars, padding=2, fontsize=7)
    axes.set_yticks([row + 0.4 - height / 2 for row in range(len(rules))], [rule["ruleId"] for rule in rules])
    axes.invert_yaxis()
    axes.set_xlabel("cards")
    axes.xaxis.get_major_locator().set_params(integer=True)
    axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=7)
    axes.spines[["top", "right"]].set_visible(False)
    return _svg(figure, "rules", "Cards per rule: shown, accepted, overridden, suppressed")


def override_rate_chart(rules: list[dict[str, Any]]) -> str:
    """Override rate per rule, in percent."""
    rated = [rule for rule in rules if rule["overrideRate"] is not None]
    figure, axes = plt.subplots(figsize=(7.5, 0.35 * len(rated) + 1.0))
    bars = axes.barh([rule["ruleId"] for rule in rated], [rule["overrideRate"] * 100 for rule in rated],
                     color=_COLOURS["overridden"])
    axes.bar_label(bars, labels=[f"{rule['overrideRate'] * 100:.0f} %" for rule in rated], padding=2, fontsize=7)
    axes.invert_yaxis()
    axes.set_xlim(0, 110)
    axes.set_xlabel("overridden / shown (%)")
    axes.spines[["top", "right"]].set_visible(False)
    return _svg(figure, "override-rate", "Override rate per rule")


def status_chart(services: list[dict[str, Any]]) -> str:
    """Calls per service, stacked by HTTP status."""
    statuses = sorted({status for service in services for status in service["callsByStatus"]})
    figure, axes = plt.subplots(figsize=(7.5, 0.6 * len(services) + 1.2))
    left = [0] * len(services)
    palette = {"200": "#59a14f"}
    others = iter(["#f28e2b", "#e15759", "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"])
    for status in statuses:
        counts = [service["callsByStatus"].get(status, 0) for service in services]
        bars = axes.barh([s["serviceId"] for s in services], counts, left=left, label=status,
                         color=palette.get(status) or next(others, "#79706e"))
        axes.bar_label(bars, labels=[str(c) if c else "" for c in counts], label_type="center", fontsize=7)
        left = [a + b for a, b in zip(left, counts, strict=True)]
    axes.set_xlabel("calls")
    axes.xaxis.get_major_locator().set_params(integer=True)
    axes.legend(title="HTTP status", fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1))
    axes.spines[["top", "right"]].set_visible(False)
    return _svg(figure, "status", "Calls per service by HTTP status")


def trend_chart(weeks: list[dict[str, Any]]) -> str:
    """Weekly calls, cards shown, overridden and suppressed."""
    figure, axes = plt.subplots(figsize=(7.5, 2.8))
    labels = [week["week"] for week in weeks]
    for key in ("calls", "cardsShown", "overridden", "suppressed"):
        axes.plot(labels, [week[key] for week in weeks], marker="o", label=_LABELS[key], color=_COLOURS[key])
    axes.set_ylabel("per week")
    axes.set_ylim(bottom=0)
    axes.yaxis.get_major_locator().set_params(integer=True)
    axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=7)
    axes.spines[["top", "right"]].set_visible(False)
    return _svg(figure, "trend", "Weekly trend")


_TEMPLATE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Needlecheck alert governance report</title>
<style>
body{font:14px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:64rem;padding:0 1rem;color:#222}
table{border-collapse:collapse;margin:.5rem 0 1.5rem;width:100%}
th,td{border-bottom:1px solid #ddd;padding:.3rem .5rem;text-align:left;vertical-align:top}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
th{cursor:pointer;user-select:none;background:#f6f6f6}
th[aria-sort=ascending]::after{content:" \\25B2"} th[aria-sort=descending]::after{content:" \\25BC"}
.empty{padding:1rem;background:#f6f6f6;border-left:4px solid #4e79a7}
figure{margin:0 0 1.5rem} svg{max-width:100%;height:auto}
</style></head><body>
<h1>Alert governance report</h1>
<p>Generated {{ s.generatedAt }}; period {{ s.window.since or "start of the records" }} to
{{ s.window.until or "now" }}. {{ s.totals.calls }} hook calls, {{ s.totals.cardsShown }} cards shown,
{{ s.totals.suppressed }} suppressed as repeats.</p>
{% if s.empty %}
<p class="empty" id="empty">No hook calls were recorded in this period: there is nothing to report yet.</p>
{% else %}
<h2>Per rule</h2>
{% if s.rules %}
<figure>{{ charts.rules | safe }}</figure>
<figure>{{ charts.override_rate | safe }}</figure>
{% endif %}
<table id="rules" class="sortable"><thead><tr><th>rule</th><th>family</th><th class="n">shown</th>
<th class="n">accepted</th><th class="n">overridden</th><th class="n">override rate</th><th class="n">suppressed</th>
<th>override reasons</th></tr></thead><tbody>
{% for r in s.rules %}<tr><td title="{{ r.title }}">{{ r.ruleId }}</td><td>{{ r.family }}</td>
<td class="n">{{ r.cardsShown }}</td><td class="n">{{ r.accepted }}</td><td class="n">{{ r.overridden }}</td>
<td class="n" data-value="{{ r.overrideRate if r.overrideRate is not none else -1 }}">{{
 "%.0f %%" % (r.overrideRate * 100) if r.overrideRate is not none else "-" }}</td>
<td class="n">{{ r.suppressed }}</td>
<td>{% for code, count in r.overrideReasons.items() %}{{ code }}: {{ count }}{% if not loop.last %}, {% endif %}{%
 endfor %}</td></tr>
{% endfor %}</tbody></table>
<h2>Per service</h2>
<figure>{{ charts.status | safe }}</figure>
<table id="services" class="sortable"><thead><tr><th>service</th><th class="n">calls</th><th>by status</th>
<th class="n">latency p50 ms</th><th class="n">latency p95 ms</th><th class="n">FHIR p50 ms</th>
<th class="n">FHIR p95 ms</th><th class="n">prefetch complete</th></tr></thead><tbody>
{% for v in s.services %}<tr><td>{{ v.serviceId }}</td><td class="n">{{ v.calls }}</td>
<td>{% for status, count in v.callsByStatus.items() %}{{ status }}: {{ count }}{% if not loop.last %}, {%
 endif %}{% endfor %}</td>
{% for value in (v.latencyMs.p50, v.latencyMs.p95, v.fhirMs.p50, v.fhirMs.p95) %}<td class="n"
 data-value="{{ value if value is not none else -1 }}">{{ "%.1f" % value if value is not none else "-" }}</td>{%
 endfor %}
<td class="n" data-value="{{ v.prefetchCompleteness if v.prefetchCompleteness is not none else -1 }}">{{
 "%.0f %%" % (v.prefetchCompleteness * 100) if v.prefetchCompleteness is not none else "-" }}</td></tr>
{% endfor %}</tbody></table>
<h2>Weekly trend</h2>
<figure>{{ charts.trend | safe }}</figure>
<table id="weeks" class="sortable"><thead><tr><th>week</th><th class="n">calls</th><th class="n">cards shown</th>
<th class="n">accepted</th><th class="n">overridden</th><th class="n">suppressed</th></tr></thead><tbody>
{% for w in s.weeks %}<tr><td>{{ w.week }}</td><td class="n">{{ w.calls }}</td><td class="n">{{ w.cardsShown }}</td>
<td class="n">{{ w.accepted }}</td><td class="n">{{ w.overridden }}</td><td class="n">{{ w.suppressed }}</td></tr>
{% endfor %}</tbody></table>
{% endif %}
<script>
document.querySelectorAll("table.sortable th").forEach(function (th, _, all) {
  th.addEventListener("click", function () {
    var table = th.closest("table"), body = table.tBodies[0], column = th.cellIndex;
    var descending = th.getAttribute("aria-sort") === "ascending";
    table.querySelectorAll("th").forEach(function (other) { other.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", descending ? "descending" : "ascending");
    var key = function (row) {
      var cell = row.cells[column], raw = cell.dataset.value !== undefined ? cell.dataset.value : cell.textContent;
      var number = parseFloat(raw);
      return th.classList.contains("n") && !isNaN(number) ? number : raw.trim().toLowerCase();
    };
    Array.from(body.rows).sort(function (a, b) {
      var x = key(a), y = key(b), order = x < y ? -1 : x > y ? 1 : 0;
      return descending ? -order : order;
    }).forEach(function (row) { body.appendChild(row); });
  });
});
</script>
</body></html>
"""


def render_page(summary: dict[str, Any]) -> str:
    """``index.html`` for ``summary`` (``governance_report.build_summary``)."""
    charts: dict[str, str] = {}
    if not summary["empty"]:
        if summary["rules"]:
            charts["rules"] = rules_chart(summary["rules"])
            charts["override_rate"] = override_rate_chart(summary["rules"])
        charts["status"] = status_chart(summary["services"]) if summary["services"] else ""
        charts["trend"] = trend_chart(summary["weeks"]) if summary["weeks"] else ""
    template = Environment(autoescape=True).from_string(_TEMPLATE)
    return template.render(s=summary, charts=charts)
