"""What a hook call's FHIR fallback adds over its slowest single query, with and without the worker's pool.

Starts the test suite's real FHIR server (sekmet, in-process, loaded with ``fixtures/fhir/transaction-bundle.json``)
and answers ``fixtures/requests/order-sign/server-no-prefetch.json`` (no prefetch: every key is fetched) with
``run_hook`` over and over, alternating two ways of connecting:

- ``per-call``: a new connection pool for each call (new TCP connections every call: how it was before
  ``cds_hooks/fhir_pool.py``);
- ``pooled``: the worker's shared pool (keep-alive connections reused from call to call).

For each call: the wall time of ``run_hook``, its slowest single FHIR request (sent until its body was read;
once the worker knows sekmet takes batches, the one batch that holds the call's queries) and the difference,
the time the call adds on top of what the FHIR server made it wait for at least. Medians and
p90 are printed; the aim (issue 10) is an added latency of at most 2 ms.

Run from the repository root: ``.venv/bin/python -m bench.fhir_fallback [--calls 200]``.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from requests.adapters import HTTPAdapter

from needlecheck.cds_hooks.audit import TimedFhirSession
from needlecheck.cds_hooks.fhir_client import FhirLimits
from needlecheck.cds_hooks.fhir_pool import FHIR_THREADS, worker_adapter
from needlecheck.cds_hooks.invoke import run_hook
from needlecheck.cds_hooks.services import SERVICES
from tests.support.fhir_server import FhirTestServer
from tests.support.fixtures_fhir import FHIR_BUNDLE_PATH, read_bundle

REPO = Path(__file__).resolve().parent.parent
REQUEST = REPO / "fixtures" / "requests" / "order-sign" / "server-no-prefetch.json"


Call = tuple[float, float, float, int]


def connections(adapter: HTTPAdapter) -> int:
    """How many connections the adapter's pools have opened so far."""
    return sum(pool.num_connections for pool in adapter.poolmanager.pools._container.values())


def one_call(body: dict[str, object], pool: ThreadPoolExecutor, adapter: HTTPAdapter) -> Call:
    """(wall ms, slowest request ms, FHIR wait ms, connections opened) of one hook call over ``adapter``."""
    opened = connections(adapter)
    session = TimedFhirSession(adapter)
    started = time.perf_counter()
    with session:
        run_hook(SERVICES["dry-needling-order-sign"], copy.deepcopy(body), FhirLimits(), pool, session)
    wall = (time.perf_counter() - started) * 1000
    slowest = max((stop - start for start, stop in session._intervals), default=0.0) * 1000
    return wall, slowest, session.waited_ms, connections(adapter) - opened


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def main(argv: list[str] | None = None) -> int:
    """Measure and print the table."""
    parser = argparse.ArgumentParser(prog="python -m bench.fhir_fallback", description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200, help="measured calls per mode")
    parser.add_argument("--warmup", type=int, default=20, help="unmeasured calls per mode first")
    args = parser.parse_args(argv)
    request = json.loads(REQUEST.read_text(encoding="utf-8"))
    with FhirTestServer() as server, ThreadPoolExecutor(max_workers=FHIR_THREADS) as pool:
        server.load(read_bundle(FHIR_BUNDLE_PATH))
        request["fhirServer"] = server.base_url
        request["fhirAuthorization"] = {"access_token": server.auth_headers["Authorization"].split(" ", 1)[1],
                                        "token_type": "Bearer", "expires_in": 300, "scope": "patient/*.read",
                                        "subject": "needlecheck"}
        results: dict[str, list[Call]] = {"per-call": [], "pooled": []}
        shared = worker_adapter()
        for index in range(args.warmup + args.calls):
            for mode in results:  # alternating, so both see the same load
                adapter = HTTPAdapter() if mode == "per-call" else shared
                measured = one_call(request, pool, adapter)
                if adapter is not shared:
                    adapter.close()  # the per-call pool ends with its call
                if index >= args.warmup:
                    results[mode].append(measured)
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}; {args.calls} calls per mode")
    print("| mode | wall ms | slowest query ms | added ms (wall - slowest), median / p90 | FHIR wait ms | "
          "connections opened per call |")
    print("|---|---|---|---|---|---|")
    for mode, rows in results.items():
        added = [wall - slowest for wall, slowest, _, _ in rows]
        print(f"| {mode} | {statistics.median(r[0] for r in rows):.2f} | {statistics.median(r[1] for r in rows):.2f} "
              f"| {statistics.median(added):.2f} / {percentile(added, 0.9):.2f} "
              f"| {statistics.median(r[2] for r in rows):.2f} | {statistics.mean(r[3] for r in rows):.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
