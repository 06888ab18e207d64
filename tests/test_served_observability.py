"""Metrics, logs and listening sockets of ``needlecheck serve`` (gunicorn, 2 workers, ``log_format = "json"``), as
an operator sees them: ``/metrics`` adds up every worker's counts, even those of workers that have since exited;
every line of the output is a JSON object; the access log carries no query string and nothing from the body;
each worker listens on a socket of its own."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.support.served_process import ServedProcess, serve_needlecheck

REQUESTS = Path(__file__).resolve().parent.parent / "fixtures" / "requests"
ORDER_SIGN = "/cds-services/dry-needling-order-sign"
PATIENT_ID = "nc-pat-1"
ACCESS_TOKEN = "body-access-token-5f1d"
QUERY_SECRET = "query-secret-93ab"
WAIT_SECONDS = 60.0
TEST_DATASETS = Path(__file__).resolve().parent / "data"
INSTALLED = "ncci-mue-practitioner"
MISSING = {"ncci-ptp-practitioner": ("DN-NCCI-001", "DN-PAIR-001"), "ncd-30.3.3-icd10": ("DN-MCR-001",)}


@dataclass
class Served:
    """The running service and the temporary directory it was given (``TMPDIR``)."""

    process: ServedProcess
    tmp: Path


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """One ``needlecheck serve`` with 2 workers and JSON logs for the module (starting one takes seconds)."""
    workdir = tmp_path_factory.mktemp("observability")
    tmp = workdir / "tmp"
    tmp.mkdir()
    # One data set of three installed: the other two are an administrator's matter.
    shutil.copytree(TEST_DATASETS / INSTALLED, workdir / "datasets" / INSTALLED)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("NEEDLECHECK_DATASETS_DIR", str(workdir / "datasets"))
        # The server makes its metrics directory under TMPDIR, where the tests can look at it.
        patch.setenv("TMPDIR", str(tmp))
        patch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
        with serve_needlecheck(workdir, 'log_format = "json"\n', workers=2) as process:
            yield Served(process, tmp)
    assert not list(tmp.glob("needlecheck-metrics-*")), "the metrics directory outlived the server"


def session() -> requests.Session:
    """A session that ignores proxy settings."""
    http = requests.Session()
    http.trust_env = False
    return http


def order_sign_body() -> dict[str, Any]:
    """A request whose body carries the patient id and an access token."""
    body: dict[str, Any] = json.loads((REQUESTS / "order-sign/code001-20561-two-muscles.json").read_text("utf-8"))
    assert body["context"]["patientId"] == PATIENT_ID
    body["fhirServer"] = "https://fhir.example.org/r4"  # the prefetch is complete: never contacted
    body["fhirAuthorization"] = {"access_token": ACCESS_TOKEN, "token_type": "Bearer", "expires_in": 300,
                                 "scope": "patient/*.read", "subject": "needlecheck"}
    return body


def hook_calls(base_url: str) -> float:
    """``needlecheck_hook_calls_total`` of order-sign 200s, as one ``GET /metrics`` (fresh connection) says."""
    with session() as http:
        response = http.get(f"{base_url}/metrics", timeout=30)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            if (sample.name == "needlecheck_hook_calls_total"
                    and sample.labels == {"service": "dry-needling-order-sign", "status": "200"}):
                return sample.value
    return 0.0


def call_order_sign(base_url: str, times: int) -> None:
    """``times`` hook calls, each on a new connection (so either worker may take it)."""
    for _ in range(times):
        with session() as http:
            response = http.post(f"{base_url}{ORDER_SIGN}?patient={PATIENT_ID}&token={QUERY_SECRET}",
                                 json=order_sign_body(), timeout=30)
        assert response.status_code == 200, response.text


def workers_of(master: int) -> set[int]:
    """The pids of the processes whose parent is ``master`` (gunicorn's workers)."""
    children = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # the process ended while we looked
        if int(fields[1]) == master:
            children.add(int(stat.parent.name))
    return children


def wait_for_new_workers(served: Served, old: set[int]) -> set[int]:
    """The two workers gunicorn started in place of ``old``, once both answer."""
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        current = workers_of(served.process.process.pid)
        if len(current) == 2 and not current & old:
            return current
        time.sleep(0.2)
    pytest.fail(f"gunicorn did not replace its workers {old} within {WAIT_SECONDS:.0f} s:\n"
                f"{served.process.log()[-2000:]}")


def test_metrics_add_up_over_workers_including_exited_ones(served: Served) -> None:
    base_url = served.process.base_url
    [metrics_dir] = served.tmp.glob("needlecheck-metrics-*")
    before = hook_calls(base_url)
    call_order_sign(base_url, 6)
    # Whichever worker answers the scrape, it reports every worker's calls.
    assert {hook_calls(base_url) for _ in range(6)} == {before + 6}

    first_workers = workers_of(served.process.process.pid)
    assert len(first_workers) == 2
    for pid in first_workers:
        os.kill(pid, signal.SIGTERM)
    second_workers = wait_for_new_workers(served, first_workers)
    call_order_sign(base_url, 4)
    # The 6 calls were answered by processes that no longer exist, the 4 by their replacements.
    assert {hook_calls(base_url) for _ in range(4)} == {before + 10}
    writers = {int(path.stem.rsplit("_", 1)[1]) for path in metrics_dir.glob("counter_*.db")}
    assert writers & first_workers and writers & second_workers


def test_every_output_line_is_json_and_the_access_log_holds_no_client_data(served: Served) -> None:
    base_url = served.process.base_url
    call_order_sign(base_url, 1)
    with session() as http:
        assert http.get(f"{base_url}/readyz?probe={QUERY_SECRET}", timeout=30).status_code == 200
        assert http.post(f"{base_url}/cds-services/{PATIENT_ID}?token={QUERY_SECRET}", json=order_sign_body(),
                         timeout=30).status_code == 404
        assert http.get(f"{base_url}/patients/{PATIENT_ID}", timeout=30).status_code == 404
    # Each worker writes its lines from a thread of its own: wait for every request's.
    for line in (r'"POST", "route": "/cds-services/<service_id>", "status": 200', r'"route": "/readyz", "status": 200',
                 r'"route": "/cds-services/<service_id>", "status": 404', r'"GET", "route": "-", "status": 404'):
        output = served.process.log_once(line)
    lines = [json.loads(line) for line in output.splitlines() if line.strip()]  # each line parses, or this fails
    assert all(isinstance(line, dict) and {"time", "level", "logger", "message"} <= set(line) for line in lines)
    assert any(line["logger"] == "gunicorn.error" and "Listening at" in line["message"] for line in lines)
    # gunicorn's line names no address when each worker opens its own socket: the service's start-up line does.
    assert any(line["message"] == f"listening on {base_url}, each of the 2 workers on a socket of its own"
               for line in lines if line["logger"] == "needlecheck")
    access = [line for line in lines if line["logger"] == "needlecheck.access"]
    routes = {(line["method"], line["route"], line["status"]) for line in access}
    assert {("POST", "/cds-services/<service_id>", 200), ("GET", "/readyz", 200),
            ("POST", "/cds-services/<service_id>", 404), ("GET", "-", 404), ("GET", "/metrics", 200)} <= routes
    assert all(isinstance(line["ms"], float) and line["ms"] >= 0 for line in access)
    for secret in (PATIENT_ID, ACCESS_TOKEN, QUERY_SECRET, "fhir.example.org"):
        assert secret not in output, secret


def test_missing_data_sets_are_said_once_at_start_up_in_readyz_and_in_metrics(served: Served) -> None:
    base_url = served.process.base_url
    lines = [json.loads(line) for line in served.process.log().splitlines() if line.strip()]
    for name, rule_ids in MISSING.items():
        [warning] = [line for line in lines if line["message"].startswith(f"data set {name} ")]
        assert warning["level"] == "WARNING"
        assert warning["pid"] == served.process.process.pid  # the master's, before the workers start
        assert all(rule_id in warning["message"] for rule_id in rule_ids)
    assert not [line for line in lines if line["message"].startswith(f"data set {INSTALLED} ")]

    with session() as http:
        readiness = http.get(f"{base_url}/readyz", timeout=30)
        metrics = http.get(f"{base_url}/metrics", timeout=30).text
    assert readiness.status_code == 200  # missing data sets do not take the instance out
    assert sorted(readiness.json()["missingDataSets"]) == sorted(MISSING)
    gauge = {sample.labels["dataset"]: sample.value for family in text_string_to_metric_families(metrics)
             for sample in family.samples if sample.name == "needlecheck_dataset_installed"}
    assert gauge == {INSTALLED: 1.0, **{name: 0.0 for name in MISSING}}


def listening_sockets(port: int) -> set[str]:
    """The inodes of the TCP sockets listening on ``port`` (state 0A in /proc/net/tcp and tcp6)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                    found.add(fields[9])
    return found


def sockets_of(pid: int) -> set[str]:
    """The inodes of the sockets process ``pid`` holds open."""
    held = set()
    for descriptor in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            target = os.readlink(descriptor)
            if target.startswith("socket:["):
                held.add(target[len("socket:["):-1])
    return held


def test_each_worker_listens_on_a_socket_of_its_own(served: Served) -> None:
    # With SO_REUSEPORT the kernel spreads new connections over the workers' sockets; on one shared socket the
    # worker that won each accept race took the connection, often 12 of 16 (see cds_hooks/server.py).
    port = urlsplit(served.process.base_url).port
    assert port is not None
    master = served.process.process.pid
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        workers, listeners = workers_of(master), listening_sockets(port)
        held = {worker: sockets_of(worker) & listeners for worker in workers}
        if len(workers) == 2 and all(len(sockets) == 1 for sockets in held.values()):
            break
        assert time.monotonic() < deadline, f"workers {held}, listeners {listeners}"
        time.sleep(0.2)
    assert len(listeners) == 2 and set().union(*held.values()) == listeners
    assert not sockets_of(master) & listeners  # the master accepts nothing
