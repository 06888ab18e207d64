"""``/metrics`` in one process (the Flask test client, default registry): counters move with the right
labels after hook and feedback calls, and no label carries anything a client sent."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from flask.testing import FlaskClient
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from needlecheck.cds_hooks.services import SERVICES
from tests.support.fhir_server import FhirTestServer

REQUESTS = Path(__file__).resolve().parent.parent / "fixtures" / "requests"
ORDER_SIGN = "dry-needling-order-sign"


def load(name: str) -> dict[str, Any]:
    """A request fixture."""
    return json.loads((REQUESTS / name).read_text(encoding="utf-8"))


def sample(name: str, **labels: str) -> float:
    """The current value of one series of the default registry (0 before its first observation)."""
    return REGISTRY.get_sample_value(name, labels) or 0.0


def scraped(client: FlaskClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """``GET /metrics`` parsed: every sample by (name, labels)."""
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(response.get_data(as_text=True)) for s in family.samples}


def test_a_hook_call_counts_the_call_its_cards_latency_and_prefetch_keys(client: FlaskClient) -> None:
    request = load("order-sign/code001-20561-two-muscles.json")
    keys = {key.name for key in SERVICES[ORDER_SIGN].prefetch}
    calls = sample("needlecheck_hook_calls_total", service=ORDER_SIGN, status="200")
    code_cards = sample("needlecheck_cards_total", rule="DN-CODE-001", indicator="warning")
    timed = sample("needlecheck_hook_duration_seconds_count", service=ORDER_SIGN)
    provided = {key: sample("needlecheck_prefetch_keys_total", service=ORDER_SIGN, key=key, outcome="provided")
                for key in keys}

    response = client.post(f"/cds-services/{ORDER_SIGN}", json=request)
    assert response.status_code == 200
    cards = response.get_json()["cards"]
    assert any(card.get("extension", {}).get("org.needlecheck.rule-id") == "DN-CODE-001" for card in cards)

    assert sample("needlecheck_hook_calls_total", service=ORDER_SIGN, status="200") == calls + 1
    assert sample("needlecheck_cards_total", rule="DN-CODE-001", indicator="warning") == code_cards + 1
    assert sample("needlecheck_hook_duration_seconds_count", service=ORDER_SIGN) == timed + 1
    # Every key was sent as a resource or Bundle: each is counted once as provided.
    for key in keys:
        assert sample("needlecheck_prefetch_keys_total", service=ORDER_SIGN, key=key,
                      outcome="provided") == provided[key] + 1, key
    series = scraped(client)
    assert series[("needlecheck_hook_calls_total", (("service", ORDER_SIGN), ("status", "200")))] == calls + 1


def test_prefetch_outcomes_null_and_failed_are_counted_by_key(client: FlaskClient) -> None:
    request = load("order-sign/code001-20561-two-muscles.json")
    request["prefetch"]["coverage"] = None       # "no data"
    del request["prefetch"]["conditions"]        # absent and no fhirServer: it cannot be fetched
    null = sample("needlecheck_prefetch_keys_total", service=ORDER_SIGN, key="coverage", outcome="null")
    failed = sample("needlecheck_prefetch_keys_total", service=ORDER_SIGN, key="conditions", outcome="failed")
    assert client.post(f"/cds-services/{ORDER_SIGN}", json=request).status_code == 200
    assert sample("needlecheck_prefetch_keys_total", service=ORDER_SIGN, key="coverage", outcome="null") == null + 1
    assert sample("needlecheck_prefetch_keys_total", service=ORDER_SIGN, key="conditions",
                  outcome="failed") == failed + 1


def test_errors_are_counted_by_status_and_an_unknown_service_is_unknown(client: FlaskClient) -> None:
    bad = sample("needlecheck_hook_calls_total", service=ORDER_SIGN, status="400")
    unknown = sample("needlecheck_hook_calls_total", service="unknown", status="404")
    assert client.post(f"/cds-services/{ORDER_SIGN}", data="{", content_type="application/json").status_code == 400
    assert client.post("/cds-services/patient-nc-pat-1", json={}).status_code == 404
    assert sample("needlecheck_hook_calls_total", service=ORDER_SIGN, status="400") == bad + 1
    assert sample("needlecheck_hook_calls_total", service="unknown", status="404") == unknown + 1
    assert "patient-nc-pat-1" not in client.get("/metrics").get_data(as_text=True)


def test_feedback_is_counted_by_outcome(client: FlaskClient) -> None:
    accepted = sample("needlecheck_feedback_items_total", service=ORDER_SIGN, outcome="accepted")
    overridden = sample("needlecheck_feedback_items_total", service=ORDER_SIGN, outcome="overridden")
    body = {"feedback": [
        {"card": "c1", "outcome": "accepted", "acceptedSuggestions": [{"id": "s1"}],
         "outcomeTimestamp": "2026-03-02T10:00:00Z"},
        {"card": "c2", "outcome": "overridden", "outcomeTimestamp": "2026-03-02T10:00:00Z"},
        {"card": "c3", "outcome": "overridden", "outcomeTimestamp": "2026-03-02T10:00:00Z"},
    ]}
    assert client.post(f"/cds-services/{ORDER_SIGN}/feedback", json=body).status_code == 200
    assert sample("needlecheck_feedback_items_total", service=ORDER_SIGN, outcome="accepted") == accepted + 1
    assert sample("needlecheck_feedback_items_total", service=ORDER_SIGN, outcome="overridden") == overridden + 2


def test_installed_data_sets_are_a_gauge(client: FlaskClient) -> None:
    series = scraped(client)
    for name in ("ncci-ptp-practitioner", "ncci-mue-practitioner", "ncd-30.3.3-icd10"):
        assert series[("needlecheck_dataset_installed", (("dataset", name),))] == 1.0


def test_no_label_carries_what_the_client_sent(client: FlaskClient) -> None:
    request = load("order-sign/code001-20561-two-muscles.json")
    request["fhirServer"] = "https://fhir.example.org/r4"  # never contacted: the prefetch is complete
    request["fhirAuthorization"] = {"access_token": "secret-token-123", "token_type": "Bearer",
                                    "expires_in": 300, "scope": "patient/*.read", "subject": "needlecheck"}
    assert client.post(f"/cds-services/{ORDER_SIGN}", json=request).status_code == 200
    text = client.get("/metrics").get_data(as_text=True)
    for sent in (request["context"]["patientId"], request["hookInstance"], "secret-token-123",
                 request["context"]["userId"], "fhir.example.org"):
        assert sent not in text
    label_names = {name for (metric, pairs) in scraped(client) if metric.startswith("needlecheck_")
                   for name, _ in pairs}
    assert label_names == {"service", "status", "rule", "indicator", "key", "outcome", "dataset", "le"}


def test_fhir_wait_and_fetched_keys_are_measured_against_a_real_fhir_server(
        client: FlaskClient, fhir_server: FhirTestServer) -> None:
    request = load("order-sign/server-no-prefetch.json")
    request["fhirServer"] = fhir_server.base_url
    request["fhirAuthorization"] = {"access_token": fhir_server.token, "token_type": "Bearer", "expires_in": 300,
                                    "scope": "patient/*.read", "subject": "needlecheck"}
    waits = sample("needlecheck_fhir_wait_seconds_count", service=ORDER_SIGN)
    fetched = sample("needlecheck_prefetch_keys_total", service=ORDER_SIGN, key="priorProcedures",
                     outcome="fetched")
    assert client.post(f"/cds-services/{ORDER_SIGN}", json=request).status_code == 200
    assert sample("needlecheck_fhir_wait_seconds_count", service=ORDER_SIGN) == waits + 1
    assert sample("needlecheck_fhir_wait_seconds_sum", service=ORDER_SIGN) > 0
    assert sample("needlecheck_prefetch_keys_total", service=ORDER_SIGN, key="priorProcedures",
                  outcome="fetched") == fetched + 1


MULTIPROCESS_SCRIPT = """
import json, os, sys
from needlecheck.cds_hooks.metrics import multiprocess_metrics
with multiprocess_metrics():
    directory = os.environ["PROMETHEUS_MULTIPROC_DIR"]
    import prometheus_client.values
    seen = {"dir": directory, "exists": os.path.isdir(directory), "mode": oct(os.stat(directory).st_mode & 0o777),
            "files": sorted(os.listdir(directory)), "multiprocess": prometheus_client.values.ValueClass._multiprocess}
seen["after"] = {"exists": os.path.isdir(seen["dir"]), "env": os.environ.get("PROMETHEUS_MULTIPROC_DIR")}
print(json.dumps(seen))
"""


def run_multiprocess_script(tmp_path: Path, **env: str) -> dict[str, Any]:
    """Run ``multiprocess_metrics`` in a fresh interpreter (this one imported prometheus-client long ago)."""
    environment = {key: value for key, value in os.environ.items() if key != "PROMETHEUS_MULTIPROC_DIR"}
    environment.update(TMPDIR=str(tmp_path), **env)
    completed = subprocess.run([sys.executable, "-c", MULTIPROCESS_SCRIPT], env=environment, capture_output=True,
                               text=True, timeout=120, check=True)
    result: dict[str, Any] = json.loads(completed.stdout)
    return result


def test_serve_gives_the_workers_a_fresh_private_directory_and_removes_it(tmp_path: Path) -> None:
    seen = run_multiprocess_script(tmp_path)
    assert Path(seen["dir"]).parent == tmp_path
    assert (seen["exists"], seen["mode"], seen["files"], seen["multiprocess"]) == (True, "0o700", [], True)
    assert seen["after"] == {"exists": False, "env": None}


def test_an_operators_directory_is_emptied_of_an_earlier_runs_files_and_kept(tmp_path: Path) -> None:
    directory = tmp_path / "prometheus"
    directory.mkdir()
    (directory / "counter_4242.db").write_bytes(b"an earlier run")
    (directory / "README").write_text("not ours")
    seen = run_multiprocess_script(tmp_path, PROMETHEUS_MULTIPROC_DIR=str(directory))
    assert (seen["dir"], seen["files"], seen["multiprocess"]) == (str(directory), ["README"], True)
    assert seen["after"] == {"exists": True, "env": str(directory)}
