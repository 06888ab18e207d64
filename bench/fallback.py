"""FHIR fallback cost: a claim-create call without prefetch, the service fetching what it needs from a real FHIR
server, against the slowest single query it sends.

The server is the test suite's sekmet (``tests/support/fhir_server.py``), run in a child process so that its
work does not share this process's GIL with ``run_hook``, loaded with exactly the resources of the benchmark's
full prefetch (so the fetched call has the same data as the prefetched one and must answer the same cards).
Measured one call at a time after warm-up, in rounds that run every variant and every query once (in an order
that rotates each round, so the machine's other load falls on all alike); the median of each:

- ``prefetched``: ``run_hook`` on the claim-create body with its full prefetch (no network);
- ``fetched``: the same body without prefetch, with ``fhirServer`` and ``fhirAuthorization``, as a worker answers
  it: a new ``audit.TimedFhirSession`` for the call over the worker's pool of keep-alive connections
  (``fhir_pool``), every prefetch key queried at once, in one batch Bundle (sekmet's CapabilityStatement lists
  ``batch`` and the first, unmeasured call read it);
- each query the fetched call sent (recorded from an unmeasured call), sent alone as a one-query call would send
  it: the service's own ``FhirClient`` on a new ``TimedFhirSession`` over the same pool, answer parsed;
- ``batch alone``: the fetched call's batch, sent alone the same way (what sekmet takes to answer it);
- ``split`` (after a warm-up): the batch's slowest query (the warm-up's) sent alone beside a batch of the
  others, both at once on one call session: what the service would wait for if it split its batch.

Each call gets a body parsed from JSON just before it (untimed), as the HTTP layer hands ``run_hook`` a body it
has just parsed: a body used again and again stays hot in the CPU caches, which flattered the prefetched call
(by 0.3-0.6 ms on the loaded 2-core machine, 12-24 %) next to the fetched one, whose resources the FHIR
server's answer has just brought.

Added latency = fetched - prefetched - slowest query: what the fallback costs beyond the wait no client can
avoid (the slowest query, when the others run beside it). It splits into what sekmet adds by answering a batch's
queries one after the other (batch alone - slowest query) and what the service's side adds (fetched -
prefetched - batch alone). Without a pooled session (``session=None``: a new ``requests.Session`` and new TCP
connections per call) it is measured too, for comparison.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import select
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import orjson
import requests

from bench.requests import TODAY, claim_create_request
from needlecheck.cds_hooks import fhir_pool
from needlecheck.cds_hooks.audit import TimedFhirSession
from needlecheck.cds_hooks.fhir_client import FhirClient, FhirLimits, FhirRefused
from needlecheck.cds_hooks.invoke import run_hook
from needlecheck.cds_hooks.services import CLAIM_CREATE

REPO = Path(__file__).resolve().parent.parent
FHIR_JSON = "application/fhir+json"


class FallbackUnavailable(RuntimeError):
    """The FHIR server could not be started here; the benchmark skips the fallback row with this reason."""


@dataclass
class FallbackResult:
    """Medians in seconds, and what the calls answered."""

    prefetched: float
    fetched: float
    fetched_without_pool: float
    queries: dict[str, float] = field(default_factory=dict)
    batch_alone: float = math.nan  # the fetched call's batch sent alone (nan: the call sent no batch)
    # The slowest query sent alone beside a batch of the others, both at once (nan: not measured): what
    # splitting the batch would cost against sekmet.
    split: float = math.nan
    requests_per_call: int = 0  # HTTP requests one fetched call sends (a batch holding every query is one)
    cards_prefetched: int = 0
    cards_fetched: int = 0
    calls: int = 0

    @property
    def slowest_query(self) -> tuple[str, float]:
        """The query with the highest median, and that median."""
        return max(self.queries.items(), key=lambda item: item[1]) if self.queries else ("none", math.nan)

    @property
    def added(self) -> float:
        """Fetched - prefetched - slowest query, seconds."""
        return self.fetched - self.prefetched - self.slowest_query[1]

    @property
    def server_share(self) -> float:
        """What sekmet adds by answering a batch's queries one after the other: batch alone - slowest query."""
        return self.batch_alone - self.slowest_query[1]

    @property
    def service_share(self) -> float:
        """What the service's side adds: fetched - prefetched - batch alone."""
        return self.fetched - self.prefetched - self.batch_alone

    @property
    def added_without_pool(self) -> float:
        """The same with a new session per call."""
        return self.fetched_without_pool - self.prefetched - self.slowest_query[1]


def prefetch_resources(body: dict[str, Any]) -> list[dict[str, Any]]:
    """Every resource in ``body``'s prefetch, Bundles unpacked."""
    resources: list[dict[str, Any]] = []
    for value in body["prefetch"].values():
        if value.get("resourceType") == "Bundle":
            resources += [entry["resource"] for entry in value.get("entry") or []]
        else:
            resources.append(value)
    return resources


def transaction(resources: list[dict[str, Any]]) -> dict[str, Any]:
    """A transaction Bundle that PUTs each resource at its id."""
    return {"resourceType": "Bundle", "type": "transaction",
            "entry": [{"resource": resource,
                       "request": {"method": "PUT", "url": f"{resource['resourceType']}/{resource['id']}"}}
                      for resource in resources]}


_CHILD = """
import json, sys
try:
    from tests.support.fhir_server import FhirTestServer
except Exception as error:  # sekmet is in the test extra; a plain install has no tests/support either
    print(json.dumps({"error": f"cannot import the test FHIR server: {error!r}"}), flush=True)
    raise SystemExit(0)
server = FhirTestServer(startup_timeout=float(sys.argv[1]))
try:
    server.start()
except Exception as error:
    print(json.dumps({"error": f"the test FHIR server did not start: {error!r}"}), flush=True)
    raise SystemExit(0)
print(json.dumps({"base_url": server.base_url, "token": server.token}), flush=True)
sys.stdin.read()  # serve until the parent closes our stdin
server.stop()
"""


@contextlib.contextmanager
def fhir_server(start_timeout: float = 60.0) -> Iterator[tuple[str, str]]:
    """(base URL, bearer token) of sekmet running in a child process until the block ends."""
    # The child waits for sekmet as long as we wait for the child: on a loaded machine its import alone can
    # take more than the server's default 15 s (seen at load 10 on 2 cores).
    process = subprocess.Popen([sys.executable, "-c", _CHILD, str(start_timeout)], cwd=REPO, stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert process.stdout is not None and process.stdin is not None
    try:
        ready, _, _ = select.select([process.stdout], [], [], start_timeout)
        line = process.stdout.readline() if ready else ""
        if not line:
            raise FallbackUnavailable(f"the test FHIR server gave no address within {start_timeout:.0f} s "
                                      f"(exit status {process.poll()})")
        answer = json.loads(line)
        if "error" in answer:
            raise FallbackUnavailable(answer["error"])
        yield answer["base_url"], answer["token"]
    finally:
        with contextlib.suppress(OSError):
            process.stdin.close()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


class _RecordingSession(TimedFhirSession):
    """A worker's call session that remembers the path and query of every URL it GETs and of every GET in a
    batch it POSTs (what the service asked for), the batches it sent, and how many requests it sent."""

    def __init__(self, base_url: str) -> None:
        super().__init__()
        self.base_url = base_url.rstrip("/") + "/"
        self.asked: list[str] = []
        self.batches: list[list[str]] = []

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
        response = super().request(method, url, *args, **kwargs)
        if method == "POST" and isinstance(kwargs.get("data"), bytes):
            batch = [entry["request"]["url"] for entry in orjson.loads(kwargs["data"]).get("entry") or []]
            self.asked.extend(batch)
            self.batches.append(batch)
        elif response.request.url and not response.request.url.endswith("/metadata"):
            # The final URL, with the query the client encoded (params included).
            self.asked.append(response.request.url.removeprefix(self.base_url))
        return response


def _one_query_call(base_url: str, token: str, limits: FhirLimits, queries: list[str]) -> None:
    """What a call that needs only ``queries`` (one, or one batch) does with them: its own session over the
    worker's pool, the service's client, the answers parsed. A query may find nothing (404 for a reference the
    server lacks): only an unreachable server is a failure."""
    with TimedFhirSession() as session:
        client = FhirClient(base_url, token, limits, session)
        try:
            if len(queries) == 1:
                client.collect(client.get(queries[0]))
            else:
                client.batch(queries)
        except FhirRefused as error:
            if error.status is None or error.status >= 500:
                raise


def _split_call(base_url: str, token: str, limits: FhirLimits, pool: ThreadPoolExecutor, alone: str,
                others: list[str]) -> None:
    """``alone`` sent on the pool beside one batch of ``others`` sent from this thread, on one call session:
    what the service would send if it took its slowest query out of the batch so that sekmet's answers to the
    others need not wait for it."""
    with TimedFhirSession() as session:
        client = FhirClient(base_url, token, limits, session)
        beside = pool.submit(lambda: client.collect(client.get(alone)))
        client.batch(others)
        beside.result()


def interleaved_medians(calls: dict[str, Callable[[], Callable[[], object]]], rounds: int,
                        give_up: float) -> dict[str, float]:
    """Median seconds of each call, timed in rounds that run every call once, in an order that rotates each round,
    so a change in the machine's other load falls on all of them alike; stops after ``give_up``.

    Each entry prepares its call (untimed: a body parsed, say) and returns what is timed."""
    names = list(calls)
    times: dict[str, list[float]] = {name: [] for name in names}
    for number in range(rounds):
        shift = number % len(names)
        for name in names[shift:] + names[:shift]:
            call = calls[name]()
            started = time.perf_counter()
            call()
            times[name].append(time.perf_counter() - started)
        if time.perf_counter() > give_up:
            break
    return {name: statistics.median(values) for name, values in times.items()}


def measure_fallback(calls: int, warmup: int, time_limit: float) -> FallbackResult:
    """Start sekmet, load the prefetch resources, and time the variants, each query and the batch.

    Raises FallbackUnavailable when sekmet cannot start here, RuntimeError when the fetched call does not
    answer what the prefetched one answers (the measurement would compare different work)."""
    prefetched_body = claim_create_request()
    limits = FhirLimits()
    with fhir_server() as (base_url, token), ThreadPoolExecutor(max_workers=fhir_pool.FHIR_THREADS,
                                                                thread_name_prefix="fhir") as pool:
        headers = {"Authorization": f"Bearer {token}", "Accept": FHIR_JSON, "Content-Type": FHIR_JSON}
        loaded = requests.post(base_url, json=transaction(prefetch_resources(prefetched_body)), headers=headers,
                               timeout=60)
        if not loaded.ok:
            raise FallbackUnavailable(f"loading the prefetch resources failed: HTTP {loaded.status_code}")
        fetched_body = claim_create_request()
        del fetched_body["prefetch"]
        fetched_body["fhirServer"] = base_url
        fetched_body["fhirAuthorization"] = {"access_token": token, "token_type": "Bearer", "expires_in": 3600,
                                             "scope": "patient/*.read", "subject": "needlecheck-bench"}
        prefetched_json, fetched_json = orjson.dumps(prefetched_body), orjson.dumps(fetched_body)
        # The first call to a server also reads its CapabilityStatement (does it take batches?), beside
        # its queries; the second is what every later call of the worker does.
        with _RecordingSession(base_url) as session:
            run_hook(CLAIM_CREATE, orjson.loads(fetched_json), limits, pool, session=session, today=TODAY)
        wait_for_batch_support(base_url)
        with _RecordingSession(base_url) as session:
            first = run_hook(CLAIM_CREATE, orjson.loads(fetched_json), limits, pool, session=session, today=TODAY)
        asked = sorted(set(session.asked))
        requests_per_call, batches = session.request_count, session.batches
        prefetched_result = run_hook(CLAIM_CREATE, orjson.loads(prefetched_json), limits, pool, today=TODAY)
        if first.body != prefetched_result.body:
            raise RuntimeError("the fetched claim-create answered differently from the prefetched one: "
                               f"{len(first.body['cards'])} vs {len(prefetched_result.body['cards'])} cards")

        def prefetched() -> Callable[[], object]:
            return partial(run_hook, CLAIM_CREATE, orjson.loads(prefetched_json), limits, pool, today=TODAY)

        def fetched() -> Callable[[], object]:
            body = orjson.loads(fetched_json)

            def call() -> None:
                with TimedFhirSession() as session:  # as a worker answers a call (audit.trace_invocation)
                    run_hook(CLAIM_CREATE, body, limits, pool, session=session, today=TODAY)
            return call

        def without_pool() -> Callable[[], object]:
            return partial(run_hook, CLAIM_CREATE, orjson.loads(fetched_json), limits, pool, today=TODAY)

        variants: dict[str, Callable[[], Callable[[], object]]] = {
            "prefetched": prefetched, "fetched": fetched, "without pool": without_pool}
        for query in asked:
            variants[query] = lambda queries=[query]: partial(_one_query_call, base_url, token, limits, queries)
        if len(batches) == 1 and len(batches[0]) > 1:
            variants["batch alone"] = lambda: partial(_one_query_call, base_url, token, limits, batches[0])
        if warmup > 0:
            warm = interleaved_medians(variants, warmup, time.perf_counter() + time_limit)
            if "batch alone" in variants:  # the slowest query of the warm-up taken out of the batch
                slowest = max((query for query in asked if query in batches[0]), key=warm.__getitem__)
                others = [query for query in batches[0] if query != slowest]
                variants["split"] = lambda: partial(_split_call, base_url, token, limits, pool, slowest, others)
        medians = interleaved_medians(variants, calls, time.perf_counter() + time_limit)
    queries = {query: medians[query] for query in asked}
    return FallbackResult(medians["prefetched"], medians["fetched"], medians["without pool"], queries,
                          medians.get("batch alone", math.nan), medians.get("split", math.nan), requests_per_call,
                          len(prefetched_result.body["cards"]), len(first.body["cards"]), calls)


def wait_for_batch_support(base_url: str, seconds: float = 10.0) -> None:
    """Until this process knows whether the server takes batches (its first call asked, without waiting)."""
    deadline = time.monotonic() + seconds
    while fhir_pool.batch_support(base_url.rstrip("/") + "/") is None and time.monotonic() < deadline:
        time.sleep(0.005)


if __name__ == "__main__":  # a quick look: python -m bench.fallback
    result = measure_fallback(int(os.environ.get("CALLS", "30")), 5, 60)
    print(json.dumps({"prefetched_ms": result.prefetched * 1000, "fetched_ms": result.fetched * 1000,
                      "without_pool_ms": result.fetched_without_pool * 1000,
                      "queries_ms": {q: t * 1000 for q, t in result.queries.items()},
                      "batch_alone_ms": result.batch_alone * 1000, "split_ms": result.split * 1000,
                      "added_ms": result.added * 1000,
                      "server_share_ms": result.server_share * 1000, "service_share_ms": result.service_share * 1000,
                      "requests_per_call": result.requests_per_call,
                      "cards": [result.cards_prefetched, result.cards_fetched]},
                     indent=2))
