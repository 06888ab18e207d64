"""report.html: one self-contained page a practice manager reads, drawn from summary.json.

Charts are matplotlib figures rendered to SVG and inlined, with text kept as text; the page loads nothing
from anywhere, not even a font. Every chart has a table with the same numbers beside it.
"""

from __future__ import annotations

import io
from decimal import Decimal
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from jinja2 import Environment, PackageLoader, select_autoescape

matplotlib.rcParams.update({"svg.fonttype": "none", "svg.hashsalt": "needlecheck", "font.size": 10,
                            "font.family": "sans-serif", "axes.spines.top": False, "axes.spines.right": False})
WARNING_COLOUR, INFO_COLOUR = "#c2410c", "#64748b"


def _svg(figure: Any, label: str) -> str:
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", metadata={"Date": None})
    plt.close(figure)
    svg = buffer.getvalue()
    svg = svg[svg.index("<svg"):]
    return svg.replace("<svg ", f'<svg role="img" aria-label="{label}" ', 1)


def _bars(labels: list[str], warnings: list[int], infos: list[int], title: str, horizontal: bool) -> str:
    height = max(2.2, 0.38 * len(labels) + 1.0) if horizontal else 3.2
    figure, axes = plt.subplots(figsize=(7.5, height), layout="constrained")
    positions = list(range(len(labels)))
    draw = axes.barh if horizontal else axes.bar
    first = draw(positions, warnings, color=WARNING_COLOUR, label="warning")
    offset = {"left": warnings} if horizontal else {"bottom": warnings}
    second = draw(positions, infos, color=INFO_COLOUR, label="info", **offset)
    for bars in (first, second):
        axes.bar_label(bars, labels=[str(v) if v else "" for v in bars.datavalues], label_type="center",
                       color="white", fontsize=8)
    if horizontal:
        axes.set_yticks(positions, labels)
        axes.invert_yaxis()
        axes.set_xlabel("findings")
    else:
        axes.set_xticks(positions, labels, rotation=45 if len(labels) > 8 else 0, ha="right" if len(labels) > 8
                        else "center")
        axes.set_ylabel("findings")
    axes.legend(frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    axes.set_title(title, loc="left")
    return _svg(figure, title)


def _share_chart(at_risk: int, checked: int) -> str:
    figure, axes = plt.subplots(figsize=(7.5, 1.5), layout="constrained")
    clean = max(checked - at_risk, 0)
    axes.barh([0], [at_risk], color=WARNING_COLOUR, label=f"at risk: {at_risk}")
    axes.barh([0], [clean], left=[at_risk], color="#16a34a", label=f"no warning: {clean}")
    axes.set_yticks([])
    axes.set_xlim(0, max(checked, 1))
    axes.set_xlabel("claims with dry needling checked")
    axes.legend(frameon=False, ncols=2, loc="upper center", bbox_to_anchor=(0.5, 1.6))
    return _svg(figure, "Share of claims at risk")


def _series(table: dict[str, dict[str, int]]) -> tuple[list[str], list[int], list[int]]:
    labels = list(table)
    return labels, [table[k].get("warning", 0) for k in labels], [table[k].get("info", 0) for k in labels]


def render_report(summary: dict[str, Any]) -> str:
    """The HTML page for a scan's summary."""
    by_rule = dict(sorted(summary["findings_per_rule"].items(),
                          key=lambda item: (-item[1].get("warning", 0), -item[1].get("info", 0), item[0])))
    charts = {}
    if by_rule:
        charts["rule"] = _bars(*_series(by_rule), "Findings by rule", horizontal=True)
    if summary["findings_per_payer_class"]:
        charts["payer"] = _bars(*_series(summary["findings_per_payer_class"]), "Findings by payer class",
                                horizontal=True)
    if summary["findings_per_month"]:
        charts["month"] = _bars(*_series(summary["findings_per_month"]), "Findings by month of service",
                                horizontal=False)
    if summary["claims_checked"]:
        charts["share"] = _share_chart(summary["claims_with_warning"], summary["claims_checked"])
    environment = Environment(loader=PackageLoader("needlecheck.scan", "templates"),
                              autoescape=select_autoescape(["html"]), trim_blocks=True, lstrip_blocks=True)
    amount = summary["estimated_amount_at_risk"]
    years = sorted({row["fee_year"] for row in amount["by_figure"]})
    return environment.get_template("report.html").render(
        s=summary, charts=charts, by_rule=by_rule, amount=amount, years=years,
        share_percent=f"{100 * summary['share_of_claims_at_risk']:.1f}",
        total_usd=f"{Decimal(amount['total_usd']):,.2f}")


def write_report(summary: dict[str, Any], path: Path) -> None:
    """Write report.html for ``summary``."""
    path.write_text(render_report(summary), encoding="utf-8")
