"""In-process cost of ``run_hook``: timed calls one after the other, and a cProfile summary when asked.

``run_hook`` (``needlecheck.cds_hooks.invoke``) is the public entry point the served app and the console script
call; no HTTP, no network (the bodies name no ``fhirServer``).
"""

from __future__ import annotations

import cProfile
import io
import math
import pstats
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fhir.resources.R4B import get_fhir_model_class

from bench.load import system_busy_seconds
from bench.requests import BODIES, TODAY
from needlecheck.cds_hooks.audit import card_rule_ids
from needlecheck.cds_hooks.fhir_client import FhirLimits
from needlecheck.cds_hooks.invoke import run_hook
from needlecheck.cds_hooks.server import settle_collector
from needlecheck.cds_hooks.services import SERVICES, ServiceDefinition

REPO = Path(__file__).resolve().parent.parent


# --- statistics -------------------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    """The nearest-rank ``q`` percentile (0 < q <= 100) of ``values``; NaN when empty."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def statistics_median(values: list[float]) -> float:
    """The 50th percentile, nearest rank (the same definition as the HTTP p50)."""
    return percentile(values, 50)


@dataclass
class InProcess:
    """Per-call wall times (seconds) of ``run_hook`` for one body, and what the call answered."""

    times: list[float]
    cards: int
    rules: list[str]  # the rule id of each card
    body: dict[str, Any]
    other_cores: float = math.nan


def time_in_process(service: ServiceDefinition, body: dict[str, Any], calls: int, warmup: int,
                    time_budget: float) -> InProcess:
    """Warm up, then time ``calls`` calls of ``run_hook`` one after the other (stopping at ``time_budget`` s)."""
    limits = FhirLimits()
    with ThreadPoolExecutor(max_workers=16, thread_name_prefix="fhir") as pool:
        result = run_hook(service, body, limits, pool, today=TODAY)
        for _ in range(warmup):
            run_hook(service, body, limits, pool, today=TODAY)
        # As a served worker runs: what is loaded frozen, young collections rare (without it the first body
        # timed also pays for collections that walk the benchmark's own modules, 0.2-0.3 ms a call).
        settle_collector()
        times: list[float] = []
        busy_before, cpu_before, wall_before = system_busy_seconds(), time.process_time(), time.perf_counter()
        give_up = wall_before + time_budget
        for _ in range(calls):
            started = time.perf_counter()
            run_hook(service, body, limits, pool, today=TODAY)
            finished = time.perf_counter()
            times.append(finished - started)
            if finished > give_up:
                break
        busy_after, cpu_after, wall_after = system_busy_seconds(), time.process_time(), time.perf_counter()
    other = math.nan
    if busy_before is not None and busy_after is not None:
        other = max(0.0, busy_after - busy_before - (cpu_after - cpu_before)) / (wall_after - wall_before)
    return InProcess(times, len(result.body["cards"]), sorted(card_rule_ids(result.body)), result.body, other)


def _area(filename: str, function: str) -> str:
    where = f"{filename} {function}"
    if "pydantic" in where or "fhir/resources" in filename or "fhir_core" in where:
        return "pydantic / fhir.resources (model validation)"
    for package in ("cds_hooks", "plugin", "mappings"):
        if f"{REPO}/{package}/" in filename:
            return f"{package}/ (own code)"
    if "json" in where:
        return "json"
    if filename == "~" or "/lib/python" in filename:
        return "other stdlib / builtins"
    return "other"


def validation_only(body: dict[str, Any], calls: int) -> float:
    """Median seconds to validate, with fhir.resources R4B models, just the FHIR resources ``run_hook`` parses
    from ``body``: the context resource (draftOrders Bundle or Claim) and every prefetched resource."""
    resources = [value for value in body["context"].values() if isinstance(value, dict)]
    for value in body["prefetch"].values():
        if value.get("resourceType") == "Bundle":
            resources += [entry["resource"] for entry in value.get("entry") or []]
        else:
            resources.append(value)
    models = [(get_fhir_model_class(resource["resourceType"]), resource) for resource in resources]
    times = []
    for _ in range(calls):
        started = time.perf_counter()
        for model, resource in models:
            model.model_validate(resource)
        times.append(time.perf_counter() - started)
    return statistics_median(times)


def profile_in_process(bodies: dict[str, dict[str, Any]], calls: int, out: Path,
                       medians: dict[str, float]) -> str:
    """cProfile ``calls`` calls per body (keys of ``BODIES``); full listing to ``out``, Markdown summary returned."""
    limits = FhirLimits()
    profiler = cProfile.Profile()
    with ThreadPoolExecutor(max_workers=16, thread_name_prefix="fhir") as pool:
        for name, body in bodies.items():
            run_hook(SERVICES[BODIES[name].service_id], body, limits, pool, today=TODAY)
        profiler.enable()
        for name, body in bodies.items():
            for _ in range(calls):
                run_hook(SERVICES[BODIES[name].service_id], body, limits, pool, today=TODAY)
        profiler.disable()
    listing = io.StringIO()
    stats = pstats.Stats(profiler, stream=listing)
    stats.sort_stats("tottime").print_stats(40)
    stats.sort_stats("cumulative").print_stats(60)
    out.write_text(listing.getvalue(), encoding="utf-8")

    raw: dict[tuple[str, int, str], tuple[Any, ...]] = stats.stats  # type: ignore[attr-defined]
    total = sum(entry[2] for entry in raw.values()) or 1.0
    by_area: dict[str, float] = {}
    for (filename, _, function), entry in raw.items():
        area = _area(filename, function)
        by_area[area] = by_area.get(area, 0.0) + entry[2]
    n_calls = calls * len(bodies)

    def where(key: tuple[str, int, str]) -> str:
        filename, line, function = key
        filename = filename.replace(f"{REPO}/", "")
        for marker in ("site-packages/", "lib/python3"):
            if marker in filename:
                filename = filename.split(marker, 1)[1]
        return function if filename == "~" else f"{filename}:{line}({function})"

    lines = ["Without the profiler: median time of only the FHIR model validation of the resources `run_hook` "
             "parses (context resource + every prefetched resource), against the whole `run_hook` median:", "",
             "| scenario | validation only ms | run_hook ms | share |", "|---|---|---|---|"]
    for name, body in bodies.items():
        alone = validation_only(body, calls)
        lines.append(f"| {BODIES[name].label} | {1000 * alone:.2f} | {1000 * medians[name]:.2f} | "
                     f"{100 * alone / medians[name]:.0f} % |")
    lines += ["", f"cProfile over {calls} calls of each scenario ({n_calls} calls; the profiler slows Python code "
              "more than pydantic-core's compiled validators, so shares are approximate). Self time by area:", "",
             "| area | self time % |", "|---|---|"]
    lines += [f"| {area} | {100 * seconds / total:.0f} % |"
              for area, seconds in sorted(by_area.items(), key=lambda item: -item[1])]
    lines += ["", "Own functions by cumulative time (ms per call, share of run_hook):", "",
              "| function | cumulative ms/call | % of run_hook |", "|---|---|---|"]
    run_hook_key = next(key for key in raw if key[2] == "run_hook" and key[0].endswith("cds_hooks/invoke.py"))
    hook_total = raw[run_hook_key][3]
    own = [(key, entry) for key, entry in raw.items() if any(f"{REPO}/{p}/" in key[0]
                                                               for p in ("cds_hooks", "plugin", "mappings"))]
    for key, entry in sorted(own, key=lambda item: -item[1][3])[:14]:
        lines.append(f"| `{where(key)}` | {1000 * entry[3] / n_calls:.3f} | {100 * entry[3] / hook_total:.0f} % |")
    lines += ["", "Top functions by self time:", "", "| function | calls/call | self ms/call |", "|---|---|---|"]
    for key, entry in sorted(raw.items(), key=lambda item: -item[1][2])[:12]:
        lines.append(f"| `{where(key)}` | {entry[1] / n_calls:.0f} | {1000 * entry[2] / n_calls:.3f} |")
    return "\n".join(lines)
