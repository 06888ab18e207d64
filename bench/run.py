"""Benchmark Needlecheck in one run: in-process ``run_hook`` cost, HTTP latency and throughput under
``needlecheck serve``, and the same HTTP load against a trivial Flask endpoint on the same gunicorn stack.

Run from the repository root: ``.venv/bin/python -m bench.run`` (``--help`` for the knobs). Prints a
Markdown report and writes it to ``bench/results.md``; when an in-process median is above the 2 ms target
it also profiles ``run_hook`` with cProfile and writes the full listing to ``bench/profile.txt``.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import datetime as dt
import io
import json
import math
import os
import platform
import pstats
import shlex
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from fhir.resources.R4B import get_fhir_model_class

from bench.load import LoadResult, process_tree_cpu, run_load, system_busy_seconds
from bench.requests import SCENARIOS, TODAY
from needlecheck.cds_hooks.fhir_client import FhirLimits
from needlecheck.cds_hooks.invoke import run_hook
from needlecheck.cds_hooks.services import SERVICES, ServiceDefinition

REPO = Path(__file__).resolve().parent.parent
BENCH = REPO / "bench"
HOST = "127.0.0.1"
TARGET_IN_PROCESS_MS = 2.0
TARGET_CEILING_SHARE = 50.0
LABELS = {
    "dry-needling-order-sign": "order-sign, full prefetch",
    "dry-needling-claim-create": "claim-create, Claim + full prefetch",
}


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


def _ms(seconds: float) -> str:
    return "n/a" if math.isnan(seconds) else f"{seconds * 1000:.2f}"


# --- in-process ---------------------------------------------------------------------------------------


@dataclass
class InProcess:
    """Per-call wall times (seconds) of ``run_hook`` for one scenario, and what the call answered."""

    times: list[float]
    cards: int
    rules: list[str]
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
    return InProcess(times, len(result.body["cards"]), sorted({f.rule_id for f in result.findings}), result.body,
                     other)


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
    """cProfile ``calls`` calls per scenario; full listing to ``out``, Markdown summary returned."""
    limits = FhirLimits()
    profiler = cProfile.Profile()
    with ThreadPoolExecutor(max_workers=16, thread_name_prefix="fhir") as pool:
        for service_id, body in bodies.items():
            run_hook(SERVICES[service_id], body, limits, pool, today=TODAY)
        profiler.enable()
        for service_id, body in bodies.items():
            for _ in range(calls):
                run_hook(SERVICES[service_id], body, limits, pool, today=TODAY)
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

    def name(key: tuple[str, int, str]) -> str:
        filename, line, function = key
        filename = filename.replace(f"{REPO}/", "")
        for marker in ("site-packages/", "lib/python3"):
            if marker in filename:
                filename = filename.split(marker, 1)[1]
        return function if filename == "~" else f"{filename}:{line}({function})"

    lines = ["Without the profiler: median time of only the FHIR model validation of the resources `run_hook` "
             "parses (context resource + every prefetched resource), against the whole `run_hook` median:", "",
             "| scenario | validation only ms | run_hook ms | share |", "|---|---|---|---|"]
    for service_id, body in bodies.items():
        alone = validation_only(body, calls)
        lines.append(f"| {LABELS[service_id]} | {1000 * alone:.2f} | {1000 * medians[service_id]:.2f} | "
                     f"{100 * alone / medians[service_id]:.0f} % |")
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
        lines.append(f"| `{name(key)}` | {1000 * entry[3] / n_calls:.3f} | {100 * entry[3] / hook_total:.0f} % |")
    lines += ["", "Top functions by self time:", "", "| function | calls/call | self ms/call |", "|---|---|---|"]
    for key, entry in sorted(raw.items(), key=lambda item: -item[1][2])[:12]:
        lines.append(f"| `{name(key)}` | {entry[1] / n_calls:.0f} | {1000 * entry[2] / n_calls:.3f} |")
    return "\n".join(lines)


# --- HTTP ---------------------------------------------------------------------------------------------


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def wait_healthy(port: int, process: subprocess.Popen[bytes], log: Path, timeout: float) -> None:
    """Poll ``GET /healthz`` until it answers 200; raise with the server log if it dies or times out."""
    give_up = time.monotonic() + timeout
    while time.monotonic() < give_up:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}:\n{log.read_text(errors='replace')[-3000:]}")
        try:
            with _NO_PROXY.open(f"http://{HOST}:{port}/healthz", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.1)
    raise RuntimeError(f"server not healthy after {timeout:.0f} s:\n{log.read_text(errors='replace')[-3000:]}")


@contextlib.contextmanager
def served(command: list[str], port: int, env: dict[str, str], log: Path,
           start_timeout: float) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``command`` (a gunicorn master) until the block ends; it must answer ``/healthz`` on ``port``."""
    with log.open("wb") as sink:
        process = subprocess.Popen(command, cwd=REPO, env=env, stdout=sink, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL)
        try:
            wait_healthy(port, process, log, start_timeout)
            yield process
        finally:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(timeout=5)


@dataclass
class HttpRun:
    """One measured HTTP scenario."""

    load: LoadResult
    server_cpu: dict[int, float] = field(default_factory=dict)
    machine_busy: float = math.nan

    @property
    def other_cores(self) -> float:
        """CPU used meanwhile by processes that are neither this server nor the load generator, in cores."""
        if math.isnan(self.machine_busy) or not self.server_cpu or not self.load.wall_seconds:
            return math.nan
        other = self.machine_busy - sum(self.server_cpu.values()) - self.load.client_cpu_seconds
        return max(0.0, other) / self.load.wall_seconds

    @property
    def cpu_ms_per_request(self) -> float:
        """Server (master + workers) CPU time per answered request, NaN when unknown."""
        if not self.server_cpu or not self.load.completed:
            return math.nan
        return 1000 * sum(self.server_cpu.values()) / self.load.completed

    @property
    def worker_split(self) -> str:
        """Each process's share of the server CPU, largest first (shows whether the workers shared the load)."""
        total = sum(self.server_cpu.values())
        if not total:
            return "n/a"
        return "/".join(f"{100 * cpu / total:.0f}" for cpu in sorted(self.server_cpu.values(), reverse=True)
                        if cpu / total >= 0.01) + " %"


def http_scenario(process: subprocess.Popen[bytes], port: int, path: str, body: bytes, total: int, warmup: int,
                  concurrency: int, time_limit: float) -> HttpRun:
    """Warm up, then measure ``total`` requests at ``concurrency`` with the server's CPU time around it."""
    run_load(HOST, port, path, body, warmup, concurrency, time_limit)
    before, busy_before = process_tree_cpu(process.pid) or {}, system_busy_seconds()
    load = run_load(HOST, port, path, body, total, concurrency, time_limit)
    after, busy_after = process_tree_cpu(process.pid) or {}, system_busy_seconds()
    busy = busy_after - busy_before if busy_before is not None and busy_after is not None else math.nan
    return HttpRun(load, {pid: after[pid] - before.get(pid, 0.0) for pid in after}, busy)


# --- report -------------------------------------------------------------------------------------------


def machine() -> str:
    """CPU count, CPU model, OS and versions of Python and the serving stack."""
    model = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    versions = ", ".join(f"{package} {metadata.version(package)}"
                         for package in ("gunicorn", "flask", "pydantic", "fhir.resources"))
    return (f"nproc {usable} ({model}), {platform.system()} {platform.release()}, "
            f"Python {platform.python_version()}; {versions}")


def command_line(argv: list[str]) -> str:
    """The command that reproduces this run, relative to the repository root."""
    python = Path(sys.executable)
    with contextlib.suppress(ValueError):
        python = python.relative_to(REPO)
    return shlex.join([str(python), "-m", "bench.run", *argv])


def build_report(args: argparse.Namespace, argv: list[str], in_process: dict[str, InProcess],
                 http: dict[str, HttpRun], ceilings: dict[str, HttpRun], profile: str | None,
                 elapsed: float, load_before: str) -> str:
    """The Markdown report: summary table, target check, details, and the profile summary if any."""
    now = dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    out = [
        "# Needlecheck benchmark results", "",
        f"- date: {now}",
        f"- machine: {machine()}",
        f"- command (from the repository root): `{command_line(argv)}`",
        f"- in-process: `run_hook` called {args.calls} times one after the other after {args.warmup} warm-up calls, "
        f"fixed `today` {TODAY.isoformat()}, no fhirServer (no network)",
        f"- HTTP: `needlecheck serve` with default settings{f' and --config {args.config}' if args.config else ''} "
        f"(gunicorn gthread; see details), {args.http_requests} requests per scenario after {args.http_warmup} "
        f"warm-up requests, {args.concurrency} keep-alive connections (closed loop), loopback only",
        f"- whole run: {elapsed:.0f} s; load average before it: {load_before}. Other processes' CPU during each "
        "phase is in the details tables: anything well above 0 means the figures are contaminated.", "",
        "| scenario | in-process median ms | in-process p99 ms | HTTP p50 ms | HTTP p99 ms | req/s | % of ceiling |",
        "|---|---|---|---|---|---|---|",
    ]
    for service_id, label in LABELS.items():
        timing, run, ceiling = in_process.get(service_id), http.get(service_id), ceilings.get(service_id)
        cells = [label]
        cells += [_ms(statistics_median(timing.times)), _ms(percentile(timing.times, 99))] if timing else ["—"] * 2
        if run:
            share = (100 * run.load.throughput / ceiling.load.throughput
                     if ceiling and ceiling.load.throughput else math.nan)
            cells += [_ms(percentile(run.load.latencies, 50)), _ms(percentile(run.load.latencies, 99)),
                      f"{run.load.throughput:.0f}", "n/a" if math.isnan(share) else f"{share:.0f} %"]
        else:
            cells += ["—"] * 4
        out.append("| " + " | ".join(cells) + " |")
    for service_id, ceiling in ceilings.items():
        out.append(f"| framework ceiling ({LABELS[service_id].split(',')[0]} body) | — | — | "
                   f"{_ms(percentile(ceiling.load.latencies, 50))} | {_ms(percentile(ceiling.load.latencies, 99))} | "
                   f"{ceiling.load.throughput:.0f} | 100 % |")

    out += ["", "## Targets", ""]
    for service_id, timing in in_process.items():
        median = statistics_median(timing.times) * 1000
        verdict = "met" if median <= TARGET_IN_PROCESS_MS else "NOT met"
        out.append(f"- in-process ≤ {TARGET_IN_PROCESS_MS:g} ms, {LABELS[service_id]}: median {median:.2f} ms, "
                   f"{verdict}")
    for service_id, run in http.items():
        ceiling = ceilings.get(service_id)
        if ceiling and ceiling.load.throughput:
            share = 100 * run.load.throughput / ceiling.load.throughput
            verdict = "met" if share >= TARGET_CEILING_SHARE else "NOT met"
            by_cpu = 100 * ceiling.cpu_ms_per_request / run.cpu_ms_per_request
            cpu_note = "" if math.isnan(by_cpu) else (
                f" (by server CPU per request, which neither worker imbalance nor other load skews as much: "
                f"{ceiling.cpu_ms_per_request:.2f} / {run.cpu_ms_per_request:.2f} ms = {by_cpu:.0f} %)")
            out.append(f"- HTTP ≥ {TARGET_CEILING_SHARE:g} % of ceiling throughput, {LABELS[service_id]}: "
                       f"{share:.0f} %, {verdict}{cpu_note}")

    if http or ceilings:
        out += ["", "## HTTP details", "",
                "| scenario | answered | errors | wall s | server CPU ms/req | server CPU split by process | "
                "client CPU % of a core | other processes' CPU, cores | response |",
                "|---|---|---|---|---|---|---|---|---|"]
        rows = [(LABELS[s], r) for s, r in http.items()]
        rows += [(f"ceiling ({LABELS[s].split(',')[0]} body)", r) for s, r in ceilings.items()]
        for label, run in rows:
            load = run.load
            response = _describe(load.sample_body)
            errors = f"{load.errors}" + (" (time limit hit)" if load.timed_out else "")
            cpu = run.cpu_ms_per_request
            out.append(f"| {label} | {load.completed} | {errors} | {load.wall_seconds:.1f} | "
                       f"{'n/a' if math.isnan(cpu) else f'{cpu:.2f}'} | {run.worker_split} | "
                       f"{100 * load.client_cpu_seconds / load.wall_seconds:.0f} % | {_cores(run.other_cores)} | "
                       f"{response} |")
        failures = [f for _, r in rows for f in r.load.failures[:3]]
        if failures:
            out += ["", "First failures: " + "; ".join(failures)]

    out += ["", "## In-process details", "",
            "| scenario | calls | mean ms | min ms | max ms | cards | rules fired | other processes' CPU, cores |",
            "|---|---|---|---|---|---|---|---|"]
    for service_id, timing in in_process.items():
        mean = sum(timing.times) / len(timing.times)
        out.append(f"| {LABELS[service_id]} | {len(timing.times)} | {_ms(mean)} | {_ms(min(timing.times))} | "
                   f"{_ms(max(timing.times))} | {timing.cards} | {', '.join(timing.rules) or 'none'} | "
                   f"{_cores(timing.other_cores)} |")
    if profile:
        out += ["", "## Profile (in-process above target)", "", profile, "",
                "Full listing: `bench/profile.txt`."]
    return "\n".join(out) + "\n"


def _cores(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.2f}"


def _describe(body: bytes) -> str:
    try:
        parsed = json.loads(body)
    except ValueError:
        return f"{len(body)} bytes, not JSON"
    if isinstance(parsed, dict) and isinstance(parsed.get("cards"), list):
        return f"{len(parsed['cards'])} cards"
    return f"{len(body)} bytes"


# --- main ---------------------------------------------------------------------------------------------


def parse_args(argv: list[str]) -> argparse.Namespace:
    """The benchmark's options; the defaults are the documented run."""
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000, help="timed in-process calls per scenario")
    parser.add_argument("--warmup", type=int, default=200, help="untimed in-process calls first")
    parser.add_argument("--http-requests", type=int, default=3000, help="measured HTTP requests per scenario")
    parser.add_argument("--http-warmup", type=int, default=200, help="unmeasured HTTP requests first")
    parser.add_argument("--concurrency", type=int, default=16, help="client connections")
    parser.add_argument("--time-limit", type=float, default=40.0, help="hard limit per measured phase, seconds")
    parser.add_argument("--profile-calls", type=int, default=300, help="profiled calls per scenario")
    parser.add_argument("--profile", choices=("auto", "always", "never"), default="auto",
                        help="cProfile run_hook: when a median is above target (auto), always or never")
    parser.add_argument("--skip-http", action="store_true", help="in-process measurements only")
    parser.add_argument("--config", type=Path, help="TOML config passed to both servers (e.g. workers)")
    parser.add_argument("--output", type=Path, default=BENCH / "results.md", help="report file")
    return parser.parse_args(argv)


def _server_commands(port: int, config: Path | None) -> tuple[list[str], list[str]]:
    script = Path(sys.executable).with_name("needlecheck")
    service = [str(script)] if script.exists() else [sys.executable, "-m", "needlecheck"]
    service += ["serve", "--host", HOST, "--port", str(port)]
    ceiling = [sys.executable, "-m", "bench.ceiling_app", "--host", HOST, "--port", str(port)]
    if config:
        service += ["--config", str(config)]
        ceiling += ["--config", str(config)]
    return service, ceiling


def _step(message: str) -> Callable[[], None]:
    started = time.perf_counter()
    print(f"... {message}", file=sys.stderr, flush=True)
    return lambda: print(f"    done in {time.perf_counter() - started:.1f} s", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    """Run every measurement, print the report and write it to ``--output``."""
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    started = time.perf_counter()
    load_before = " ".join(f"{v:.2f}" for v in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"
    bodies = {service_id: build() for service_id, build in SCENARIOS.items()}

    in_process: dict[str, InProcess] = {}
    for service_id, body in bodies.items():
        done = _step(f"in-process {service_id}: {args.warmup} warm-up + {args.calls} timed calls")
        in_process[service_id] = time_in_process(SERVICES[service_id], body, args.calls, args.warmup,
                                                 args.time_limit)
        done()
    slow = any(statistics_median(t.times) * 1000 > TARGET_IN_PROCESS_MS for t in in_process.values())
    profile = None
    if args.profile == "always" or (args.profile == "auto" and slow):
        done = _step(f"cProfile, {args.profile_calls} calls per scenario")
        medians = {service_id: statistics_median(timing.times) for service_id, timing in in_process.items()}
        profile = profile_in_process(bodies, args.profile_calls, BENCH / "profile.txt", medians)
        done()

    http: dict[str, HttpRun] = {}
    ceilings: dict[str, HttpRun] = {}
    if not args.skip_http:
        payloads = {service_id: json.dumps(body).encode() for service_id, body in bodies.items()}
        with tempfile.TemporaryDirectory(prefix="needlecheck-bench-") as scratch:
            env = {**os.environ, "NEEDLECHECK_DATA_DIR": str(Path(scratch) / "data"), "PYTHONUNBUFFERED": "1"}
            for kind in ("service", "ceiling"):
                port = free_port()
                command = _server_commands(port, args.config)[kind == "ceiling"]
                done = _step(f"HTTP {kind}: {shlex.join(command)}")
                with served(command, port, env, Path(scratch) / f"{kind}.log", start_timeout=30) as process:
                    for service_id, payload in payloads.items():
                        run = http_scenario(process, port, f"/cds-services/{service_id}", payload,
                                            args.http_requests, args.http_warmup, args.concurrency, args.time_limit)
                        (http if kind == "service" else ceilings)[service_id] = run
                done()

    report = build_report(args, argv, in_process, http, ceilings, profile, time.perf_counter() - started,
                          load_before)
    print(report)
    args.output.write_text(report, encoding="utf-8")
    print(f"written to {args.output}", file=sys.stderr)
    failed = any(run.load.errors or run.load.timed_out for run in (*http.values(), *ceilings.values()))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
