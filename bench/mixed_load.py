"""A bounded load test: mixed valid and invalid calls of both hooks and feedback against ``needlecheck serve``.

Run from the repository root: ``.venv/bin/python -m bench.mixed_load`` (``--help`` for the knobs; default
20 000 requests at concurrency 32 against 2 gunicorn workers on loopback). It reports counts by kind and
status, latency percentiles, and whether anything was lost: every 5xx, every request without an answer,
and every feedback item answered 200 but missing from the store (or stored twice) is a failure, and the
exit status is then 1. ``tests/test_load.py`` runs a small version of the same thing.

The client is ``requests`` on a thread pool (one keep-alive session per thread), i.e. an ordinary HTTP
client rather than the benchmark's lean asyncio generator (``bench/load.py``): it takes more CPU on the
same two cores, so these latencies are not comparable with ``bench/run.py``'s.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import requests

from bench.requests import SCENARIOS
from needlecheck.cds_hooks.settings import Settings
from needlecheck.cds_hooks.store import open_store

HOST = "127.0.0.1"
ORDER_SIGN = "/cds-services/dry-needling-order-sign"
CLAIM_CREATE = "/cds-services/dry-needling-claim-create"


@dataclass(frozen=True)
class Call:
    """One request of the mix, with the statuses that are correct for it and the feedback cards it carries."""

    kind: str
    method: str
    path: str
    body: bytes | None
    expected: frozenset[int]
    cards: tuple[str, ...] = ()


@dataclass
class Outcome:
    """What came back for one call (``status`` 0: no answer)."""

    call: Call
    status: int
    seconds: float
    problem: str = ""
    stored: int = 0


@dataclass
class MixedLoadResult:
    """Everything one run measured."""

    outcomes: list[Outcome] = field(default_factory=list)
    wall_seconds: float = 0.0
    stored_rows: int = 0

    @property
    def server_errors(self) -> int:
        """Answers with a 5xx status."""
        return sum(1 for outcome in self.outcomes if outcome.status >= 500)

    @property
    def unanswered(self) -> list[Outcome]:
        """Requests that got no HTTP answer at all."""
        return [outcome for outcome in self.outcomes if outcome.status == 0]

    @property
    def unexpected(self) -> list[Outcome]:
        """Answers whose status is wrong for the request (a valid call refused, an invalid one accepted)."""
        return [outcome for outcome in self.outcomes if outcome.status and outcome.status not in outcome.call.expected]

    @property
    def accepted_cards(self) -> set[str]:
        """Feedback cards the service answered 200 for."""
        return {card for outcome in self.outcomes if outcome.status == 200 for card in outcome.call.cards}

    @property
    def lost_feedback(self) -> int:
        """Accepted feedback items that are not in the store (negative: more rows than accepted items)."""
        return len(self.accepted_cards) - self.stored_rows

    def statuses(self) -> dict[str, Counter[int]]:
        """Status counts per kind of call."""
        counts: dict[str, Counter[int]] = {}
        for outcome in self.outcomes:
            counts.setdefault(outcome.call.kind, Counter())[outcome.status] += 1
        return counts

    def latency_ms(self, q: float) -> float:
        """The nearest-rank ``q`` percentile of the answered requests' latency, in ms."""
        values = sorted(outcome.seconds for outcome in self.outcomes if outcome.status)
        if not values:
            return float("nan")
        index = max(0, min(len(values) - 1, math.ceil(q / 100 * len(values)) - 1))
        return values[index] * 1000


# --------------------------------------------------------------------------------------------- the mix


def _feedback(cards: tuple[str, ...]) -> bytes:
    items = [{"card": card, "outcome": "overridden", "outcomeTimestamp": "2026-04-14T10:00:00Z",
              "overrideReason": {"reason": {"system": "urn:needlecheck:override-reason", "code": "clinical-judgement",
                                            "display": "Clinical judgement: the entry is correct as written"}}}
             for card in cards]
    return json.dumps({"feedback": items}).encode()


def _invalid_calls() -> list[Call]:
    order = SCENARIOS["dry-needling-order-sign"]()
    wrong_hook = {**order, "hook": "claim-create"}
    no_context = {key: value for key, value in order.items() if key != "context"}
    deep = {**order, "extension": {"org.example.deep": json.loads("[" * 100 + "]" * 100)}}
    bad_feedback = {"feedback": [{"card": "x", "outcome": "maybe", "outcomeTimestamp": "yesterday"}]}
    return [
        Call("invalid", "POST", ORDER_SIGN, b'{"hook": "order-sign", ', frozenset({400})),
        Call("invalid", "POST", CLAIM_CREATE, json.dumps(wrong_hook).encode(), frozenset({400})),
        Call("invalid", "POST", ORDER_SIGN, json.dumps(no_context).encode(), frozenset({400})),
        Call("invalid", "POST", ORDER_SIGN, json.dumps(deep).encode(), frozenset({400})),
        Call("invalid", "POST", "/cds-services/no-such-service", json.dumps(order).encode(), frozenset({404})),
        Call("invalid", "POST", f"{ORDER_SIGN}/feedback", json.dumps(bad_feedback).encode(), frozenset({400})),
        Call("invalid", "GET", ORDER_SIGN, None, frozenset({405})),
    ]


def build_calls(total: int, seed: int = 20560) -> list[Call]:
    """``total`` calls: 35 % order-sign, 25 % claim-create, 20 % feedback (1 to 3 new cards each, one in ten a
    resend of an earlier feedback request), 20 % invalid (bad JSON, wrong hook, no context, too deep, unknown
    service, bad feedback, wrong method), in a seeded random order."""
    rng = random.Random(seed)
    order_sign = json.dumps(SCENARIOS["dry-needling-order-sign"]()).encode()
    claim_create = json.dumps(SCENARIOS["dry-needling-claim-create"]()).encode()
    invalid = _invalid_calls()
    calls: list[Call] = []
    feedback_sent: list[Call] = []
    for index in range(total):
        draw = rng.random()
        if draw < 0.35:
            calls.append(Call("order-sign", "POST", ORDER_SIGN, order_sign, frozenset({200})))
        elif draw < 0.60:
            calls.append(Call("claim-create", "POST", CLAIM_CREATE, claim_create, frozenset({200})))
        elif draw < 0.80:
            if feedback_sent and rng.random() < 0.1:
                resend = rng.choice(feedback_sent)
                calls.append(Call("feedback (resend)", "POST", resend.path, resend.body, frozenset({200}),
                                  resend.cards))
                continue
            cards = tuple(f"load-{seed}-{index}-{k}" for k in range(rng.randint(1, 3)))
            path = f"{rng.choice((ORDER_SIGN, CLAIM_CREATE))}/feedback"
            call = Call("feedback", "POST", path, _feedback(cards), frozenset({200}), cards)
            feedback_sent.append(call)
            calls.append(call)
        else:
            calls.append(rng.choice(invalid))
    return calls


# ----------------------------------------------------------------------------------------------- running


def run_calls(base_url: str, calls: list[Call], concurrency: int, timeout: float = 30.0) -> MixedLoadResult:
    """Send ``calls`` over ``concurrency`` threads, each with its own keep-alive session."""
    local = threading.local()
    sessions: list[requests.Session] = []
    lock = threading.Lock()

    def session() -> requests.Session:
        if not hasattr(local, "session"):
            local.session = requests.Session()
            local.session.trust_env = False  # loopback only: never through a configured proxy
            with lock:
                sessions.append(local.session)
        current: requests.Session = local.session
        return current

    def send(call: Call) -> Outcome:
        headers = {"Content-Type": "application/json"} if call.body is not None else {}
        started = time.perf_counter()
        try:
            response = session().request(call.method, base_url + call.path, data=call.body, headers=headers,
                                         timeout=timeout)
        except requests.RequestException as error:
            return Outcome(call, 0, time.perf_counter() - started, f"{type(error).__name__}: {error}")
        seconds = time.perf_counter() - started
        stored = 0
        if call.cards and response.status_code == 200:
            stored = int(response.json().get("stored", 0))
        return Outcome(call, response.status_code, seconds, stored=stored)

    result = MixedLoadResult()
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="load") as pool:
        result.outcomes = list(pool.map(send, calls))
    result.wall_seconds = time.perf_counter() - started
    for each in sessions:
        each.close()
    return result


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


@contextlib.contextmanager
def served(data_dir: Path, workers: int = 2, startup_seconds: float = 60.0) -> Iterator[str]:
    """``needlecheck serve`` on a free loopback port with its data in ``data_dir``; yields the base URL."""
    port = _free_port()
    env = {**os.environ, "NEEDLECHECK_DATA_DIR": str(data_dir), "PYTHONUNBUFFERED": "1"}
    env.pop("NEEDLECHECK_DATABASE_URL", None)  # the store counted afterwards is this data directory's
    log_path = data_dir / "serve.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "needlecheck", "serve", "--host", HOST, "--port", str(port),
             "--workers", str(workers)],
            cwd=data_dir, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True)
    base_url = f"http://{HOST}:{port}"
    try:
        deadline = time.monotonic() + startup_seconds
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"needlecheck serve exited:\n{log_path.read_text(errors='replace')}")
            with contextlib.suppress(requests.RequestException):
                if requests.get(f"{base_url}/healthz", timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline:
                log_text = log_path.read_text(errors="replace")
                raise RuntimeError(f"needlecheck serve did not answer /healthz:\n{log_text}")
            time.sleep(0.1)
        yield base_url
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(5)


def run_mixed_load(total: int, concurrency: int, workers: int = 2, data_dir: Path | None = None) -> MixedLoadResult:
    """Serve, send the mix, stop, and count the feedback rows the store holds."""
    calls = build_calls(total)
    with contextlib.ExitStack() as stack:
        if data_dir is None:
            data_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="needlecheck-load-")))
        with served(data_dir, workers) as base_url:
            # Warm the workers up (data loaded on first use) outside the measurement: many connections, so
            # that every worker accepts some of them.
            hooks = [call for call in calls[:200] if call.kind in ("order-sign", "claim-create")]
            run_calls(base_url, hooks[:96], concurrency=16)
            result = run_calls(base_url, calls, concurrency)
        store = open_store(Settings(data_dir=data_dir))
        try:
            result.stored_rows = store.count_feedback()
        finally:
            store.close()
    return result


def report(result: MixedLoadResult, concurrency: int, workers: int) -> str:
    """A Markdown report of one run."""
    lines = [f"{len(result.outcomes)} requests, concurrency {concurrency}, {workers} workers, "
             f"{result.wall_seconds:.1f} s ({len(result.outcomes) / result.wall_seconds:.0f} req/s)", "",
             "| kind | requests | statuses |", "|---|---|---|"]
    for kind, counts in sorted(result.statuses().items()):
        shown = ", ".join(f"{status or 'no answer'}: {count}" for status, count in sorted(counts.items()))
        lines.append(f"| {kind} | {sum(counts.values())} | {shown} |")
    lines += ["", f"latency ms: p50 {result.latency_ms(50):.1f}, p95 {result.latency_ms(95):.1f}, "
                  f"p99 {result.latency_ms(99):.1f}, max {result.latency_ms(100):.1f}",
              f"5xx: {result.server_errors}; no answer: {len(result.unanswered)}; "
              f"wrong status: {len(result.unexpected)}",
              f"feedback: {len(result.accepted_cards)} distinct items accepted, {result.stored_rows} rows stored, "
              f"lost {result.lost_feedback}"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the load test and print its report; exit 1 if anything failed or was lost."""
    parser = argparse.ArgumentParser(prog="python -m bench.mixed_load", description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    result = run_mixed_load(args.requests, args.concurrency, args.workers)
    print(report(result, args.concurrency, args.workers))
    failed = result.server_errors or result.unanswered or result.unexpected or result.lost_feedback
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
