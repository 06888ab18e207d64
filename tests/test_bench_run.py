"""``bench/``'s own machinery: the load generators against a real loopback server, the pooling of rounds, and
a short ``bench.run`` without servers. No timing is asserted (figures belong in ``bench/results.md``); what is
checked is that the benchmark counts, pools and reports what it measured, so it cannot rot unnoticed.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest

from bench.fallback import measure_fallback
from bench.http_rounds import Round, Rounds
from bench.load import LoadResult, run_load
from bench.processes import children, free_port, served, worker_memory
from bench.run import REPO, main, settled
from bench.wrk import parse_summary, run_wrk
from needlecheck.cds_hooks.settings import Settings


class _NoCards(BaseHTTPRequestHandler):
    """Answers every POST with ``{"cards": []}`` on a keep-alive HTTP/1.1 connection; counts the bodies it read."""

    protocol_version = "HTTP/1.1"
    bodies: ClassVar[list[bytes]] = []

    def do_POST(self) -> None:
        self.bodies.append(self.rfile.read(int(self.headers["Content-Length"])))
        answer = b'{"cards": []}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args: object) -> None:
        """Quiet."""


class _QuietServer(ThreadingHTTPServer):
    """A load generator that stops closes its connections with requests in flight: no traceback for that."""

    def handle_error(self, request: object, client_address: object) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)  # type: ignore[arg-type]


@pytest.fixture
def no_cards_server() -> Iterator[int]:
    _NoCards.bodies = []
    server = _QuietServer(("127.0.0.1", 0), _NoCards)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def test_wrk_summary_expands_the_histogram_and_keeps_the_answered_count() -> None:
    summary = {"requests": 5, "duration_us": 2_000_000,
               "errors": {"connect": 1, "read": 0, "write": 0, "status": 2, "timeout": 1},
               "histogram": [[1000, 3], [2000, 2], [90000, 2]]}
    result = parse_summary(json.dumps(summary), client_cpu_seconds=0.25)
    # wrk's coordinated-omission correction adds histogram entries: the count answered comes from "requests".
    assert result.completed == 5
    assert len(result.latencies) == 7
    assert max(result.latencies) == pytest.approx(0.09)
    assert result.throughput == pytest.approx(2.5)
    assert result.errors == 2 + 1 + 1  # status, connect, timeout
    assert result.client_cpu_seconds == 0.25


def test_rounds_pool_requests_time_and_latencies() -> None:
    fast = LoadResult(latencies=[0.001] * 99, wall_seconds=1.0, statuses={200: 99})
    slow = LoadResult(latencies=[0.5], wall_seconds=1.0, statuses={200: 1})
    rounds = Rounds([Round(fast, {1: 0.5, 2: 0.5}, machine_busy=1.0), Round(slow, {1: 0.1}, machine_busy=2.0)])
    assert rounds.answered == 100
    assert rounds.throughput == pytest.approx(50.0)
    assert rounds.latency(99) == pytest.approx(0.001)
    assert rounds.latency(100) == pytest.approx(0.5)
    assert rounds.cpu_ms_per_request == pytest.approx(11.0)
    assert rounds.other_cores == pytest.approx((0.0 + 1.9) / 2)
    assert rounds.worker_split == "55/45 %"


def test_the_python_load_generator_runs_a_timed_round(no_cards_server: int) -> None:
    result = run_load("127.0.0.1", no_cards_server, "/cds-services/x", b'{"hook": "x"}', total=10**9,
                      concurrency=4, time_limit=30, duration=0.5)
    assert result.completed > 0
    assert result.errors == 0
    assert not result.timed_out
    assert result.sample_body == b'{"cards": []}'
    assert len(_NoCards.bodies) == result.completed
    assert set(_NoCards.bodies) == {b'{"hook": "x"}'}


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed (bench falls back to bench/load.py)")
def test_wrk_posts_the_body_and_reports_through_the_lua_script(no_cards_server: int) -> None:
    result = run_wrk(str(shutil.which("wrk")), f"http://127.0.0.1:{no_cards_server}/cds-services/x",
                     b'{"hook": "wrk"}', connections=4, threads=1, seconds=1)
    assert result.failures == []
    assert result.completed > 0
    assert result.errors == 0
    assert len(result.latencies) >= result.completed
    assert len(_NoCards.bodies) >= result.completed  # requests in flight when wrk stops are not counted
    assert set(_NoCards.bodies) == {b'{"hook": "wrk"}'}


def test_a_short_run_without_servers_reports_every_row(tmp_path: Path) -> None:
    output = tmp_path / "results.md"
    status = main(["--calls", "3", "--warmup", "1", "--profile", "never", "--check-runs", "1", "--skip-http",
                   "--skip-fallback", "--output", str(output)])
    report = output.read_text(encoding="utf-8")
    assert status == 0, report
    table = report.split("\n\n")[1].splitlines()
    assert table[0] == "| figure | measured | aim | verdict |"
    rows = {row.split(" | ")[0].removeprefix("| "): row for row in table[2:]}
    assert "(0 cards)" in rows["in-process `run_hook` median, order-sign, full prefetch (0 cards)"]
    assert "in-process `run_hook` median, claim-create, 20560 for 3 muscles (1 card: DN-CODE-001)" in rows
    assert sum("skipped: --skip-http" in row for row in table) == 6  # 2 bodies x 2 HTTP rows, spawn, RSS
    assert any(row.startswith("| FHIR fallback") and "skipped: --skip-fallback" in row for row in table)
    check = next(row for row in table if row.startswith("| `needlecheck check FILE`"))
    assert check.endswith(("| met |", "| NOT met |"))


def test_the_ceiling_app_serves_on_the_service_stack(tmp_path: Path) -> None:
    """``bench/ceiling_app.py`` starts through ``NeedlecheckServer`` (so a change of that class that breaks the
    ceiling fails here, not in the middle of a benchmark run), answers a hook body with no card, and its
    workers' memory can be read."""
    port = free_port()
    command = [sys.executable, "-m", "bench.ceiling_app", "--host", "127.0.0.1", "--port", str(port)]
    with served(command, port, dict(os.environ), tmp_path / "ceiling.log", "/cds-services/dry-needling-order-sign",
                b'{"hook": "order-sign"}', start_timeout=60, cwd=REPO) as ceiling:
        assert json.loads(ceiling.first_answer) == {"cards": []}
        assert ceiling.first_answer_seconds > 0
        # The first answer can come from the first worker before gunicorn has forked the next one: wait for all.
        deadline = time.monotonic() + 30
        while len(children(ceiling.process.pid)) < Settings().workers and time.monotonic() < deadline:
            time.sleep(0.05)
        master, workers = worker_memory(ceiling.process.pid)
        assert master.rss_mib > 0
        assert len(workers) == Settings().workers
        assert all(worker.rss_mib > 0 and worker.pss_mib > 0 for worker in workers)
    assert ceiling.process.returncode is not None


def test_the_fallback_row_fetches_from_sekmet_what_the_prefetch_gave() -> None:
    """The FHIR fallback measurement runs against the suite's sekmet in a child process: the call without
    prefetch sends the prefetch queries, and answers what the call with prefetch answers (no card)."""
    result = measure_fallback(calls=2, warmup=1, time_limit=60)
    assert result.cards_prefetched == result.cards_fetched == 0
    assert "Condition?patient=nc-pat-1" in result.queries
    assert any(query.startswith("Procedure?patient=nc-pat-1&code=") for query in result.queries)
    assert result.slowest_query[1] == max(result.queries.values())
    # Once sekmet is known to take batches the call sends its queries in one request, timed alone too.
    assert result.requests_per_call == 1
    assert result.batch_alone > 0
    assert result.split > 0  # the slowest query taken out of the batch, timed after the warm-up
    assert result.added == pytest.approx(result.server_share + result.service_share)


def test_the_rounds_wait_for_every_worker_of_the_last_start_to_load_its_suggestion_models(tmp_path: Path) -> None:
    log = tmp_path / "service.log"
    earlier_start = ("Listening at: http://127.0.0.1:1 (1)\nworker warmed up\nworker warmed up\n"
                     "suggestion models loaded\nsuggestion models loaded\n")
    log.write_text(earlier_start + "Listening at: http://127.0.0.1:2 (2)\nworker warmed up\nworker warmed up\n"
                   "suggestion models loaded\n")

    def last_worker_loads() -> None:
        time.sleep(0.3)
        with log.open("a") as out:
            out.write("suggestion models loaded\n")

    writer = threading.Thread(target=last_worker_loads)
    writer.start()
    assert settled(log, timeout=30) >= 0.3  # the earlier start's lines do not count
    writer.join()
    log.write_text("Listening at: http://127.0.0.1:3 (3)\nworker warmed up\n")
    with pytest.raises(RuntimeError, match="did not finish their warm-up"):
        settled(log, timeout=0.2)
