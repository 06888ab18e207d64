"""Benchmark Needlecheck against the aims of issue 10, every figure from one run.

Run from the repository root: ``.venv/bin/python -m bench.run`` (``--help`` for the knobs, ``--quick`` for a
short run). Prints a Markdown report whose first table is the one in the README (figure, aim, met or not) and
writes it to ``bench/results.md``. What each figure is and how it is measured: ``bench/README.md``.
"""

from __future__ import annotations

import argparse
import compileall
import contextlib
import datetime as dt
import json
import math
import os
import platform
import shlex
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from bench.fallback import FallbackResult, FallbackUnavailable, measure_fallback
from bench.http_rounds import Rounds, alternate, sender
from bench.inprocess import InProcess, profile_in_process, statistics_median, time_in_process
from bench.processes import CommandRun, ProcessMemory, Served, free_port, served, timed_command, worker_memory
from bench.requests import BODIES, TODAY
from bench.wrk import find_wrk
from needlecheck.cds_hooks.services import SERVICES

REPO = Path(__file__).resolve().parent.parent
BENCH = REPO / "bench"

# The aims of issue 10.
AIM_IN_PROCESS_MS = 0.5
AIM_CEILING_SHARE = 50.0
AIM_P99_MS = 50.0
AIM_SPAWN_S = 1.0
AIM_WORKER_MB = 100.0
AIM_CHECK_S = 0.7
AIM_FALLBACK_MS = 2.0

#: The folders of the modules the timed commands import: the distribution's (pyproject's package-dir) and bench/.
SOURCE_FOLDERS = ("needlecheck", "plugin", "mappings", "cds_hooks", "scan", "bench")

CLEAN = [name for name, body in BODIES.items() if not body.fires]
#: The body ``needlecheck check FILE`` is timed on.
CHECK_BODY = "order-sign"
MB = 1_000_000


# --- measurements -------------------------------------------------------------------------------------


@dataclass
class Spawns:
    """Seconds from spawn to the first 200 hook answer, per start, for one server."""

    seconds: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        """The median start, seconds (NaN when none)."""
        return statistics.median(self.seconds) if self.seconds else math.nan


@dataclass
class Memory:
    """The master's and each worker's memory after the HTTP rounds."""

    master: ProcessMemory
    workers: list[ProcessMemory]

    @property
    def worst_rss_mb(self) -> float:
        """The largest worker RSS, MB (10^6 bytes)."""
        return max((w.rss_mib * 1.048576 for w in self.workers), default=math.nan)

    @property
    def worst_pss_mb(self) -> float:
        """The largest worker PSS, MB."""
        return max((w.pss_mib * 1.048576 for w in self.workers), default=math.nan)


@dataclass
class Http:
    """Everything measured against the two servers."""

    generator: str
    connections: int
    spawns: dict[str, Spawns] = field(default_factory=lambda: {"service": Spawns(), "ceiling": Spawns()})
    rounds: dict[str, dict[str, Rounds]] = field(default_factory=dict)  # body -> server -> rounds
    memory: dict[str, Memory] = field(default_factory=dict)
    answers: dict[str, bytes] = field(default_factory=dict)  # server -> first answer
    settled_seconds: float = 0.0  # from the last spawn's first answer until every worker had warmed up


@dataclass
class Results:
    """One run's figures; None for a phase that was skipped (``skipped`` says why)."""

    in_process: dict[str, InProcess] = field(default_factory=dict)
    profile: str | None = None
    check: list[CommandRun] = field(default_factory=list)
    http: Http | None = None
    fallback: FallbackResult | None = None
    skipped: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def _step(message: str) -> Callable[[], None]:
    started = time.perf_counter()
    print(f"... {message}", file=sys.stderr, flush=True)
    return lambda: print(f"    done in {time.perf_counter() - started:.1f} s", file=sys.stderr, flush=True)


def run_in_process(args: argparse.Namespace, built: dict[str, dict[str, Any]], results: Results) -> None:
    """Time ``run_hook`` on every body; check the clean ones answer no card and the firing one its rules."""
    for name, body in built.items():
        done = _step(f"in-process {name}: {args.warmup} warm-up + {args.calls} timed calls")
        timing = time_in_process(SERVICES[BODIES[name].service_id], body, args.calls, args.warmup,
                                 args.in_process_seconds)
        results.in_process[name] = timing
        done()
        if sorted(timing.rules) != sorted(BODIES[name].fires):
            results.problems.append(f"{name} answered {timing.rules or 'no card'}, expected "
                                    f"{list(BODIES[name].fires) or 'no card'}: the benchmark body drifted")
    medians = {name: statistics_median(t.times) for name, t in results.in_process.items()}
    slow = any(median * 1000 > AIM_IN_PROCESS_MS for median in medians.values())
    if args.profile == "always" or (args.profile == "auto" and slow):
        done = _step(f"cProfile, {args.profile_calls} calls per clean body")
        results.profile = profile_in_process({name: built[name] for name in CLEAN}, args.profile_calls,
                                             BENCH / "profile.txt", medians)
        done()


def compile_sources() -> None:
    """Byte-compile the project's modules in place (``__pycache__``, ignored by git), as pip does when it installs
    the wheel. Without it, a checkout run under ``PYTHONDONTWRITEBYTECODE`` compiles some 200 modules from source
    at every start of ``needlecheck check`` and ``serve`` (~0.2-0.3 s each) that an installed service never pays."""
    for folder in SOURCE_FOLDERS:
        compileall.compile_dir(REPO / folder, quiet=1)


def run_check(args: argparse.Namespace, built: dict[str, dict[str, Any]], env: dict[str, str], scratch: Path,
              results: Results) -> None:
    """``needlecheck check FILE`` on the order-sign body: one untimed run (it also checks the answer), then timed."""
    request = scratch / "check-request.json"
    request.write_text(json.dumps(built[CHECK_BODY]), encoding="utf-8")
    command = [*_console_script(), "check", str(request)]
    done = _step(f"{shlex.join(command)}: 1 + {args.check_runs} runs")
    first = timed_command(command, env, REPO, scratch / "check.out", timeout=120)
    try:
        answer = json.loads(first.stdout)
    except ValueError:
        answer = None
    if first.returncode != 0 or answer != {"cards": []}:
        results.problems.append(f"needlecheck check exited {first.returncode} and printed "
                                f"{first.stdout[:200]!r}, not {{\"cards\": []}}")
    results.check = [timed_command(command, env, REPO, scratch / "check.out", timeout=120)
                     for _ in range(args.check_runs)]
    done()


def _console_script() -> list[str]:
    script = Path(sys.executable).with_name("needlecheck")
    return [str(script)] if script.exists() else [sys.executable, "-m", "needlecheck"]


def _server_command(kind: str, port: int, config: Path | None) -> list[str]:
    if kind == "service":
        command = [*_console_script(), "serve", "--host", "127.0.0.1", "--port", str(port)]
    else:
        command = [sys.executable, "-m", "bench.ceiling_app", "--host", "127.0.0.1", "--port", str(port)]
    return [*command, "--config", str(config)] if config else command


def run_http(args: argparse.Namespace, built: dict[str, dict[str, Any]], env: dict[str, str], scratch: Path,
             results: Results) -> None:
    """Spawn each server ``--spawns`` times (timing the first answer), then rounds against both together."""
    wrk, how = (None, "--load-generator python") if args.load_generator == "python" else find_wrk(
        install=not args.no_install_wrk)
    if args.load_generator == "wrk" and not wrk:
        raise SystemExit(f"--load-generator wrk: {how}")
    generator = (f"wrk -t{args.wrk_threads} -c{args.concurrency} ({how})" if wrk else
                 f"bench/load.py, asyncio, {args.concurrency} connections ({how})")
    http = results.http = Http(generator, args.concurrency)
    payloads = {name: json.dumps(built[name]).encode() for name in CLEAN}
    probe_name = CLEAN[0]
    probe = (f"/cds-services/{BODIES[probe_name].service_id}", payloads[probe_name])
    logs = {kind: scratch / f"{kind}.log" for kind in ("service", "ceiling")}

    def start(kind: str) -> contextlib.AbstractContextManager[Served]:
        port = free_port()
        return served(_server_command(kind, port, args.config), port, env, logs[kind], *probe,
                      start_timeout=60, cwd=REPO)

    for number in range(args.spawns - 1):
        for kind in ("service", "ceiling"):
            done = _step(f"spawn {kind} ({number + 1}/{args.spawns})")
            with start(kind) as server:
                http.spawns[kind].seconds.append(server.first_answer_seconds)
            done()
    done = _step(f"spawn both ({args.spawns}/{args.spawns}) and keep them up")
    with start("service") as service, start("ceiling") as ceiling:
        done()
        http.spawns["service"].seconds.append(service.first_answer_seconds)
        http.spawns["ceiling"].seconds.append(ceiling.first_answer_seconds)
        http.answers = {"service": service.first_answer, "ceiling": ceiling.first_answer}
        http.settled_seconds = settled(logs["service"], timeout=60)
        send = sender(wrk, args.concurrency, args.wrk_threads, args.time_limit)
        servers = {"service": (service.process.pid, service.port), "ceiling": (ceiling.process.pid, ceiling.port)}
        for name, payload in payloads.items():
            done = _step(f"HTTP {name}: {args.rounds} rounds of {args.round_seconds:g} s per server, alternating, "
                         f"with {generator}")
            path = f"/cds-services/{BODIES[name].service_id}"
            http.rounds[name] = alternate(send, servers, path, payload, args.rounds, args.round_seconds,
                                          args.warmup_seconds)
            done()
        for kind, server in (("service", service), ("ceiling", ceiling)):
            master, workers = worker_memory(server.process.pid)
            http.memory[kind] = Memory(master, workers)
    for name, by_server in http.rounds.items():
        for kind, rounds in by_server.items():
            if rounds.errors or rounds.timed_out:
                results.problems.append(f"HTTP {name} against the {kind}: {rounds.errors} failed requests"
                                        f"{' (time limit hit)' if rounds.timed_out else ''}; {rounds.failures}")


def settled(log: Path, timeout: float) -> float:
    """Wait until every worker the service log names has logged the end of its background warm-up (the
    suggestion models, ``cds_hooks/warm_up.py``); the seconds waited. Measured before that, a round pays for
    imports that a worker does once, at a pace set by the load it is serving meanwhile."""
    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        text = log.read_text(errors="replace").rsplit("Listening at:", 1)[-1]  # the last start's lines
        workers, loaded = text.count("worker warmed up"), text.count("suggestion models loaded")
        if (workers and loaded >= workers) or "warm-up call failed" in text:
            return time.perf_counter() - started
        time.sleep(0.05)
    raise RuntimeError(f"the service's workers did not finish their warm-up within {timeout:.0f} s")


def run_fallback(args: argparse.Namespace, results: Results) -> None:
    """The FHIR fallback row; skipped with the reason when sekmet cannot start here."""
    done = _step(f"FHIR fallback against sekmet: {args.fallback_calls} calls per variant")
    try:
        results.fallback = measure_fallback(args.fallback_calls, max(3, args.fallback_calls // 10), args.time_limit)
    except FallbackUnavailable as error:
        results.skipped["fallback"] = str(error)
    except RuntimeError as error:
        results.problems.append(f"FHIR fallback: {error}")
        results.skipped["fallback"] = str(error)
    done()


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


def load_average() -> str:
    """The 1, 5 and 15 minute load averages."""
    return " ".join(f"{v:.2f}" for v in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"


def _ms(seconds: float) -> str:
    return "n/a" if math.isnan(seconds) else f"{seconds * 1000:.2f} ms"


def _cores(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.2f}"


def _verdict(value: float, aim: float, at_most: bool = True) -> str:
    if math.isnan(value):
        return "n/a"
    return "met" if (value <= aim if at_most else value >= aim) else "NOT met"


def _skip(results: Results, phase: str) -> str:
    return f"skipped: {results.skipped.get(phase, 'not run')}"


def aims_table(results: Results) -> list[str]:
    """The README's table: each aim of issue 10 with the figure this run measured and whether it is met."""
    out = ["| figure | measured | aim | verdict |", "|---|---|---|---|"]
    for name, timing in results.in_process.items():
        median = statistics_median(timing.times)
        answer = f"{timing.cards} card{'s' if timing.cards != 1 else ''}" + (
            f": {', '.join(timing.rules)}" if timing.rules else "")
        out.append(f"| in-process `run_hook` median, {BODIES[name].label} ({answer}) | {_ms(median)} | "
                   f"≤ {AIM_IN_PROCESS_MS:g} ms | {_verdict(median * 1000, AIM_IN_PROCESS_MS)} |")
    http = results.http
    for name in CLEAN:
        label = BODIES[name].label.split(",")[0]
        if http is None or name not in http.rounds:
            out.append(f"| HTTP throughput, % of ceiling, {label} | — | ≥ {AIM_CEILING_SHARE:g} % | "
                       f"{_skip(results, 'http')} |")
            out.append(f"| HTTP p99 at 16 connections, {label} | — | ≤ {AIM_P99_MS:g} ms | {_skip(results, 'http')} |")
            continue
        service, ceiling = http.rounds[name]["service"], http.rounds[name]["ceiling"]
        share = 100 * service.throughput / ceiling.throughput if ceiling.throughput else math.nan
        out.append(f"| HTTP throughput, % of ceiling, {label} | {share:.0f} % ({service.throughput:.0f} vs "
                   f"{ceiling.throughput:.0f} req/s; server CPU {service.cpu_ms_per_request:.2f} vs "
                   f"{ceiling.cpu_ms_per_request:.2f} ms/req) | ≥ {AIM_CEILING_SHARE:g} % | "
                   f"{_verdict(share, AIM_CEILING_SHARE, at_most=False)} |")
        p99 = service.latency(99)
        out.append(f"| HTTP p99 at {http.connections} connections, {label} | {_ms(p99)} (ceiling "
                   f"{_ms(ceiling.latency(99))}) | ≤ {AIM_P99_MS:g} ms | {_verdict(p99 * 1000, AIM_P99_MS)} |")
    if http is None:
        out.append(f"| `needlecheck serve` spawn → first 200 hook answer | — | ≤ {AIM_SPAWN_S:g} s | "
                   f"{_skip(results, 'http')} |")
        out.append(f"| RSS per worker after warm-up | — | ≤ {AIM_WORKER_MB:g} MB | {_skip(results, 'http')} |")
    else:
        spawn, ceiling_spawn = http.spawns["service"], http.spawns["ceiling"]
        out.append(f"| `needlecheck serve` spawn → first 200 hook answer (median of {len(spawn.seconds)}) | "
                   f"{spawn.median:.2f} s (ceiling app {ceiling_spawn.median:.2f} s) | ≤ {AIM_SPAWN_S:g} s | "
                   f"{_verdict(spawn.median, AIM_SPAWN_S)} |")
        memory, ceiling_memory = http.memory.get("service"), http.memory.get("ceiling")
        if memory:
            ceiling_note = (f"; ceiling {ceiling_memory.worst_rss_mb:.0f} MB, PSS {ceiling_memory.worst_pss_mb:.0f}"
                            if ceiling_memory else "")
            out.append(f"| RSS per worker after warm-up (largest of {len(memory.workers)}) | "
                       f"{memory.worst_rss_mb:.0f} MB (PSS {memory.worst_pss_mb:.0f} MB{ceiling_note}) | "
                       f"≤ {AIM_WORKER_MB:g} MB | {_verdict(memory.worst_rss_mb, AIM_WORKER_MB)} |")
    if results.check:
        wall = statistics.median(run.wall_seconds for run in results.check)
        rss = max(run.max_rss_mib * 1.048576 for run in results.check)
        out.append(f"| `needlecheck check FILE` wall (median of {len(results.check)}), max RSS | {wall:.2f} s, "
                   f"{rss:.0f} MB | ≤ {AIM_CHECK_S:g} s | {_verdict(wall, AIM_CHECK_S)} |")
    else:
        out.append(f"| `needlecheck check FILE` wall | — | ≤ {AIM_CHECK_S:g} s | {_skip(results, 'check')} |")
    fallback = results.fallback
    if fallback:
        _, slowest = fallback.slowest_query
        out.append(f"| FHIR fallback: claim-create without prefetch, added latency over its slowest query | "
                   f"{_ms(fallback.added)} ({_ms(fallback.fetched)} - {_ms(fallback.prefetched)} with prefetch - "
                   f"{_ms(slowest)} slowest query{'; below 0: noise above the cost' if fallback.added < 0 else ''}"
                   f"{_fallback_shares(fallback)}) | ≤ {AIM_FALLBACK_MS:g} ms | "
                   f"{_verdict(fallback.added * 1000, AIM_FALLBACK_MS)} |")
    else:
        out.append(f"| FHIR fallback: added latency over the slowest query | — | ≤ {AIM_FALLBACK_MS:g} ms | "
                   f"{_skip(results, 'fallback')} |")
    return out


def http_details(http: Http) -> list[str]:
    """Per body and server: rounds, throughput per round, latency, CPU, and the memory of each process."""
    out = ["## HTTP details", "",
           f"Load generator: {http.generator}. Spawn → first 200 hook answer, each start (s): service "
           f"{', '.join(f'{s:.2f}' for s in http.spawns['service'].seconds)}; ceiling "
           f"{', '.join(f'{s:.2f}' for s in http.spawns['ceiling'].seconds)}. First answers: service "
           f"{_describe(http.answers.get('service', b''))}, ceiling {_describe(http.answers.get('ceiling', b''))}. "
           f"The rounds began once the service's workers had loaded their suggestion models in the background "
           f"({http.settled_seconds:.1f} s after the first answer).",
           "",
           "| body | server | answered | errors | req/s per round | p50 | p99 | server CPU ms/req | "
           "CPU split by process | client CPU, cores | other processes' CPU, cores |",
           "|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, by_server in http.rounds.items():
        for kind, rounds in by_server.items():
            per_round = ", ".join(f"{r.load.throughput:.0f}" for r in rounds.rounds)
            cpu = rounds.cpu_ms_per_request
            out.append(f"| {BODIES[name].label.split(',')[0]} | {kind} | {rounds.answered} | {rounds.errors}"
                       f"{' (time limit hit)' if rounds.timed_out else ''} | {per_round} | {_ms(rounds.latency(50))} | "
                       f"{_ms(rounds.latency(99))} | {'n/a' if math.isnan(cpu) else f'{cpu:.2f}'} | "
                       f"{rounds.worker_split} | {_cores(rounds.client_cores)} | {_cores(rounds.other_cores)} |")
    out += ["", "| server | process | RSS MB | PSS MB |", "|---|---|---|---|"]
    for kind, memory in http.memory.items():
        for role, process in [("master", memory.master), *(("worker", w) for w in memory.workers)]:
            out.append(f"| {kind} | {role} {process.pid} | {process.rss_mib * 1.048576:.0f} | "
                       f"{process.pss_mib * 1.048576:.0f} |")
    return out


def in_process_details(results: Results) -> list[str]:
    """Per body: calls, spread, what it answered, and the other processes' CPU meanwhile."""
    out = ["## In-process details", "",
           "| body | calls | median ms | p99 ms | min ms | cards | rules fired | other processes' CPU, cores |",
           "|---|---|---|---|---|---|---|---|"]
    for name, timing in results.in_process.items():
        times = sorted(timing.times)
        p99 = times[max(0, math.ceil(0.99 * len(times)) - 1)]
        out.append(f"| {BODIES[name].label} | {len(times)} | {1000 * statistics_median(times):.3f} | "
                   f"{1000 * p99:.3f} | {1000 * times[0]:.3f} | {timing.cards} | {', '.join(timing.rules) or 'none'} | "
                   f"{_cores(timing.other_cores)} |")
    return out


def _fallback_shares(fallback: FallbackResult) -> str:
    """The added latency split into sekmet's share and the service's (when the call sent one batch)."""
    if math.isnan(fallback.batch_alone):
        return ""
    return (f"; of it {_ms(fallback.server_share)} sekmet answering the batch's queries one after the other, "
            f"{_ms(fallback.service_share)} the service")


def fallback_details(fallback: FallbackResult) -> list[str]:
    """Each query the fetched call sent, timed alone, and the variant without a pooled session."""
    batch = "" if math.isnan(fallback.batch_alone) else (
        f" The fetched call's batch, sent alone the same way: {_ms(fallback.batch_alone)}, so of the added "
        f"{_ms(fallback.added)}, {_ms(fallback.server_share)} is sekmet's (batch alone - slowest query: it "
        f"answers a batch's queries one after the other) and {_ms(fallback.service_share)} the service's "
        "(fetched - prefetched - batch alone).")
    if not math.isnan(fallback.split):
        batch += (f" Its slowest query sent alone beside a batch of the others, both at once: {_ms(fallback.split)} "
                  "(sekmet answers the two requests one after the other, each with its own cost).")
    out = ["## FHIR fallback details", "",
           f"Medians of {fallback.calls} calls each. With prefetch: {_ms(fallback.prefetched)} "
           f"({fallback.cards_prefetched} cards); without prefetch, a worker's call session over its pool: "
           f"{_ms(fallback.fetched)} ({fallback.cards_fetched} cards); without prefetch, a new session per call: "
           f"{_ms(fallback.fetched_without_pool)} (added {_ms(fallback.added_without_pool)}). The sum of the "
           f"queries' medians is {_ms(sum(fallback.queries.values()))}: sekmet answers on one event loop, so the "
           "queries sent side by side are largely served one after the other. The fetched call sent them in "
           f"{fallback.requests_per_call} HTTP request(s) (one batch Bundle when the server's CapabilityStatement "
           f"lists `batch`).{batch} Each query and the batch are timed as a call that needs only them sends "
           "them: the service's `FhirClient` on a new call session over the pool, the answer parsed.", "",
           "| query (sent by the fetched call) | median alone |", "|---|---|"]
    for query, seconds in sorted(fallback.queries.items(), key=lambda item: -item[1]):
        shown = query if len(query) <= 100 else query[:97] + "..."
        out.append(f"| `{shown}` | {_ms(seconds)} |")
    return out


def _describe(body: bytes) -> str:
    try:
        parsed = json.loads(body)
    except ValueError:
        return f"{len(body)} bytes, not JSON"
    if isinstance(parsed, dict) and isinstance(parsed.get("cards"), list):
        return f"{len(parsed['cards'])} cards"
    return f"{len(body)} bytes"


def build_report(args: argparse.Namespace, argv: list[str], results: Results, elapsed: float,
                 load_before: str, load_after: str) -> str:
    """The Markdown report: the aims table, what was run, then the details of each phase."""
    now = dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    out = ["# Needlecheck benchmark results", "", *aims_table(results), "",
           f"- date: {now}; whole run {elapsed:.0f} s; load average before {load_before}, after {load_after}",
           f"- machine: {machine()}",
           f"- command (from the repository root): `{command_line(argv)}`",
           f"- in-process: `run_hook` {args.calls} calls one after the other per body after {args.warmup} warm-up "
           f"calls, fixed `today` {TODAY.isoformat()}, no fhirServer (no network)",
           "- start-up (check, spawn): the project's modules byte-compiled first, as an installed wheel has them"]
    if results.http:
        out.append(f"- HTTP: `needlecheck serve` and `bench/ceiling_app.py` (default settings"
                   f"{f', --config {args.config}' if args.config else ''}) up together, {args.rounds} rounds of "
                   f"{args.round_seconds:g} s per server and body taking turns, after {args.warmup_seconds:g} s of "
                   f"warm-up each; {results.http.generator}; loopback only")
    out.append("- \"other processes' CPU\" (details) is the machine's busy CPU minus the server's and the load "
               "generator's: well above 0 means another process took cores meanwhile and the figures are low.")
    if results.problems:
        out += ["", "## Problems (exit status 1)", "", *(f"- {problem}" for problem in results.problems)]
    out += ["", *in_process_details(results)]
    if results.http:
        out += ["", *http_details(results.http)]
    if results.fallback:
        out += ["", *fallback_details(results.fallback)]
    if results.profile:
        out += ["", "## Profile (an in-process median above the aim)", "", results.profile, "",
                "Full listing: `bench/profile.txt`."]
    return "\n".join(out) + "\n"


# --- main ---------------------------------------------------------------------------------------------


def parse_args(argv: list[str]) -> argparse.Namespace:
    """The benchmark's options; the defaults are the documented run (about two minutes on 2 idle cores)."""
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="a short run (about 40 s): fewer calls, one spawn, 2 rounds of 2 s, 1 check run")
    parser.add_argument("--calls", type=int, default=1000, help="timed in-process calls per body")
    parser.add_argument("--in-process-seconds", type=float, default=10.0,
                        help="stop timing a body's calls after this long (a loaded machine gets fewer calls)")
    parser.add_argument("--warmup", type=int, default=200, help="untimed in-process calls first")
    parser.add_argument("--rounds", type=int, default=3, help="measured HTTP rounds per server and body")
    parser.add_argument("--round-seconds", type=float, default=3.0, help="length of one HTTP round")
    parser.add_argument("--warmup-seconds", type=float, default=1.0, help="HTTP warm-up per server and body")
    parser.add_argument("--concurrency", type=int, default=16, help="HTTP connections")
    parser.add_argument("--load-generator", choices=("auto", "wrk", "python"), default="auto",
                        help="wrk when installed (auto installs it with apt-get as root), else bench/load.py")
    parser.add_argument("--no-install-wrk", action="store_true", help="never apt-get install wrk")
    parser.add_argument("--wrk-threads", type=int, default=2, help="wrk -t (issue 10 measured with -t2 -c16)")
    parser.add_argument("--spawns", type=int, default=3, help="starts of each server timed (the last stays up)")
    parser.add_argument("--check-runs", type=int, default=3, help="timed runs of needlecheck check FILE")
    parser.add_argument("--fallback-calls", type=int, default=60, help="calls per FHIR fallback variant")
    parser.add_argument("--time-limit", type=float, default=40.0, help="hard limit per measured phase, seconds")
    parser.add_argument("--profile-calls", type=int, default=150, help="profiled calls per clean body")
    parser.add_argument("--profile", choices=("auto", "always", "never"), default="auto",
                        help="cProfile run_hook: when a median is above the aim (auto), always or never")
    parser.add_argument("--skip-http", action="store_true", help="no servers: in-process, check and fallback only")
    parser.add_argument("--skip-fallback", action="store_true", help="no FHIR fallback row")
    parser.add_argument("--config", type=Path, help="TOML config passed to both servers (e.g. workers)")
    parser.add_argument("--output", type=Path, default=BENCH / "results.md", help="report file")
    args = parser.parse_args(argv)
    if args.quick:
        explicit = {arg.split("=", 1)[0] for arg in argv if arg.startswith("--")}
        quick = {"calls": 300, "warmup": 50, "in_process_seconds": 4.0, "rounds": 2, "round_seconds": 2.0,
                 "spawns": 1, "check_runs": 1, "fallback_calls": 20, "profile_calls": 50}
        for name, value in quick.items():
            if f"--{name.replace('_', '-')}" not in explicit:
                setattr(args, name, value)
    if args.spawns < 1 or args.rounds < 1:
        parser.error("--spawns and --rounds must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    """Run every measurement, print the report and write it to ``--output``; 1 when something went wrong."""
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    started = time.perf_counter()
    load_before = load_average()
    built = {name: body.build() for name, body in BODIES.items()}
    compile_sources()
    results = Results()
    run_in_process(args, built, results)
    with tempfile.TemporaryDirectory(prefix="needlecheck-bench-") as folder:
        scratch = Path(folder)
        env = {**os.environ, "NEEDLECHECK_DATA_DIR": str(scratch / "data"), "PYTHONUNBUFFERED": "1"}
        run_check(args, built, env, scratch, results)
        if args.skip_http:
            results.skipped["http"] = "--skip-http"
        else:
            run_http(args, built, env, scratch, results)
    if args.skip_fallback:
        results.skipped["fallback"] = "--skip-fallback"
    else:
        run_fallback(args, results)
    report = build_report(args, argv, results, time.perf_counter() - started, load_before, load_average())
    print(report)
    args.output.write_text(report, encoding="utf-8")
    print(f"written to {args.output}", file=sys.stderr)
    return 1 if results.problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
