"""End to end over real HTTP: ``needlecheck serve`` (gunicorn) as a subprocess on 127.0.0.1.

One served instance per module (2 gunicorn workers, its own data directory via
``NEEDLECHECK_DATA_DIR``), called with ``requests`` and with the third-party CDS client healthchain
0.16.1. healthchain needs a workaround (``OrderSignRequest`` below: a request subclass whose
``context`` is typed with the hook's context class) or it drops ``draftOrders`` on the wire, and its
``send_requests()`` turns failures into ``{}``, so every healthchain test asserts on the cards it
got back.
"""

from __future__ import annotations

import json
import logging
import os
import re
import socket
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests
import yaml
from healthchain.models import CDSRequest
from healthchain.models.hooks import OrderSignContext
from healthchain.models.hooks.basehookcontext import BaseHookContext
from healthchain.models.requests.cdsrequest import FHIRAuthorization
from healthchain.sandbox import SandboxClient

from needlecheck.mappings.code_systems import spellings_of
from needlecheck.mappings.cpt import CPT_SYSTEM
from tests.support.card_conformance import assert_conformant_response
from tests.support.fhir_server import FhirTestServer
from tests.support.served_process import log_matching

REQUESTS = Path(__file__).resolve().parent.parent / "fixtures" / "requests"
MANIFEST: dict[str, dict[str, Any]] = {
    case["file"]: case for case in yaml.safe_load((REQUESTS / "manifest.yaml").read_text(encoding="utf-8"))
}
OFFLINE = sorted(name for name, case in MANIFEST.items() if not case.get("needs_fhir_server"))
SERVICE_OF_HOOK = {"order-sign": "dry-needling-order-sign", "claim-create": "dry-needling-claim-create"}
RULE_EXTENSION = "org.needlecheck.rule-id"
# Only a backstop against a hang: the wait ends as soon as /healthz answers or the process exits. gunicorn's
# workers import the whole app before they answer, which took more than 30 s with two copies of the suite
# on two loaded cores (2026-12 runs); a start-up that works must not fail for being slow.
STARTUP_TIMEOUT = 300.0
STOP_TIMEOUT = 15.0
HTTP_TIMEOUT = 15.0
PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")


# ------------------------------------------------------------------------------------------ the server


@dataclass
class ServedApp:
    """A running ``needlecheck serve`` process."""

    base_url: str
    process: subprocess.Popen[bytes]
    log_path: Path
    data_dir: Path

    def log(self) -> str:
        """Everything the process wrote to stdout and stderr so far."""
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def url(self, path: str) -> str:
        """An absolute URL on the served app."""
        return f"{self.base_url}{path}"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the gunicorn master (graceful), then SIGKILL its own process group if it hangs."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, 9)  # the session we created for it: the master and its workers only
        process.wait(5)


def _wait_healthy(session: requests.Session, process: subprocess.Popen[bytes], base_url: str) -> str | None:
    """None once GET /healthz answers 200; otherwise why not (the process died or time ran out)."""
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return f"exited with status {process.returncode}"
        try:
            if session.get(f"{base_url}/healthz", timeout=2).status_code == 200:
                return None
        except requests.RequestException:
            pass
        time.sleep(0.1)
    return f"no 200 from /healthz within {STARTUP_TIMEOUT:.0f} s"


@pytest.fixture(scope="module")
def http() -> Iterator[requests.Session]:
    """A requests session that never goes through a proxy (everything here is loopback)."""
    with requests.Session() as session:
        session.trust_env = False
        yield session


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, http: requests.Session) -> Iterator[ServedApp]:
    """``python -m needlecheck serve`` on a free loopback port, stopped after the module."""
    data_dir = tmp_path_factory.mktemp("needlecheck-data")
    env = {key: value for key, value in os.environ.items() if key not in PROXY_VARIABLES}
    config = data_dir / "needlecheck.toml"
    config.write_text("allow_http = true  # the test FHIR server speaks plain http\n", encoding="utf-8")
    env.update(NEEDLECHECK_DATA_DIR=str(data_dir), NEEDLECHECK_CONFIG=str(config), NO_PROXY="127.0.0.1,localhost",
               PYTHONUNBUFFERED="1")
    problem = "not started"
    for attempt in range(3):  # the free port may be taken between probing and binding
        port = _free_port()
        log_path = data_dir / f"serve-{attempt}.log"
        with log_path.open("wb") as log_file:
            process = subprocess.Popen(
                [sys.executable, "-m", "needlecheck", "serve", "--host", "127.0.0.1", "--port", str(port),
                 "--workers", "2"],
                cwd=data_dir, env=env, stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        app = ServedApp(f"http://127.0.0.1:{port}", process, log_path, data_dir)
        try:
            problem = _wait_healthy(http, process, app.base_url) or ""
            if not problem:
                yield app
                return
        finally:
            _stop(process)
        if "already in use" not in app.log():
            break
    pytest.fail(f"needlecheck serve did not start: {problem}\n{app.log()}", pytrace=False)


# ----------------------------------------------------------------------------------------------- helpers


def load_request(name: str) -> dict[str, Any]:
    """A fresh copy of a request fixture."""
    body: dict[str, Any] = json.loads((REQUESTS / name).read_text(encoding="utf-8"))
    return body


def rule_ids(response: dict[str, Any]) -> list[str]:
    """Sorted rule ids of the warning cards of a response (the manifest's ``expect_rules``)."""
    return sorted(card["extension"][RULE_EXTENSION] for card in response["cards"]
                  if "extension" in card and card["indicator"] == "warning")


def post(http: requests.Session, served: ServedApp, path: str, body: Any) -> requests.Response:
    """POST JSON to the served app."""
    return http.post(served.url(path), json=body, timeout=HTTP_TIMEOUT)


def assert_operation_outcome(response: requests.Response, status: int, code: str) -> dict[str, Any]:
    """The response is ``status`` with a one-issue FHIR OperationOutcome of ``code``."""
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/fhir+json")
    outcome: dict[str, Any] = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    [issue] = outcome["issue"]
    assert issue["severity"] == "error"
    assert issue["code"] == code
    assert isinstance(issue["diagnostics"], str) and issue["diagnostics"]
    return outcome


# ----------------------------------------------------------------------------------------- plain HTTP


def test_discovery_lists_both_services_with_cpt_qualified_prefetch(http: requests.Session, served: ServedApp) -> None:
    response = http.get(served.url("/cds-services"), timeout=HTTP_TIMEOUT)

    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/json")
    services = response.json()["services"]
    assert {(s["id"], s["hook"]) for s in services} == {
        ("dry-needling-order-sign", "order-sign"), ("dry-needling-claim-create", "claim-create")}
    code_values = 0
    for service in services:
        assert service["title"] and service["description"]
        assert isinstance(service["prefetch"], dict) and service["prefetch"]
        for name, template in service["prefetch"].items():
            for parameter, value in parse_qsl(urlsplit(template).query):
                if parameter != "code":
                    continue
                for token in value.split(","):
                    code_values += 1
                    system, _, code = token.partition("|")
                    # CPT by its FHIR URI or its OID (mappings/code_systems.csv): both spellings are searched.
                    assert system in spellings_of(CPT_SYSTEM), f"{service['id']} {name}: '{token}' has no CPT system"
                    assert code.isdigit()
    assert code_values >= 2 * 2, "each service's history query searches at least 20560 and 20561"


@pytest.mark.parametrize("name", OFFLINE)
def test_fixture_call_over_http(name: str, http: requests.Session, served: ServedApp) -> None:
    body = load_request(name)

    response = post(http, served, f"/cds-services/{SERVICE_OF_HOOK[body['hook']]}", body)

    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    payload = response.json()
    assert_conformant_response(payload)
    assert rule_ids(payload) == sorted(MANIFEST[name]["expect_rules"])


def test_malformed_json_is_400(http: requests.Session, served: ServedApp) -> None:
    response = http.post(served.url("/cds-services/dry-needling-order-sign"), data=b'{"hook": "order-sign",',
                         headers={"Content-Type": "application/json"}, timeout=HTTP_TIMEOUT)

    assert_operation_outcome(response, 400, "structure")


def test_unknown_service_is_404(http: requests.Session, served: ServedApp) -> None:
    body = load_request("order-sign/code001-20561-two-muscles.json")

    response = post(http, served, "/cds-services/no-such-service", body)

    outcome = assert_operation_outcome(response, 404, "not-found")
    assert "no-such-service" in outcome["issue"][0]["diagnostics"]


def test_feedback_round_trip_is_idempotent(http: requests.Session, served: ServedApp) -> None:
    body = load_request("order-sign/code001-20561-two-muscles.json")
    body["hookInstance"] = str(uuid.uuid4())  # card uuids derive from it: this test's card is new
    answer = post(http, served, "/cds-services/dry-needling-order-sign", body)
    assert answer.status_code == 200, answer.text
    [card] = [c for c in answer.json()["cards"] if c.get("extension", {}).get(RULE_EXTENSION) == "DN-CODE-001"]
    [suggestion] = card["suggestions"]
    feedback = {"feedback": [{
        "card": card["uuid"],
        "outcome": "accepted",
        "acceptedSuggestions": [{"id": suggestion["uuid"]}],
        "outcomeTimestamp": "2026-03-02T10:00:00Z",
    }]}

    first = post(http, served, "/cds-services/dry-needling-order-sign/feedback", feedback)
    second = post(http, served, "/cds-services/dry-needling-order-sign/feedback", feedback)

    assert first.status_code == 200, first.text
    assert first.json() == {"received": 1, "stored": 1}
    assert second.status_code == 200, second.text
    assert second.json() == {"received": 1, "stored": 0}
    with sqlite3.connect(f"file:{served.data_dir / 'needlecheck.sqlite3'}?mode=ro", uri=True) as database:
        rows = database.execute("SELECT service_id, outcome, accepted_suggestions FROM feedback WHERE card_uuid = ?",
                                (card["uuid"],)).fetchall()
    database.close()
    assert rows == [("dry-needling-order-sign", "accepted", json.dumps([suggestion["uuid"]]))]


def test_startup_log_says_unauthenticated_calls_are_accepted_because_of_loopback(served: ServedApp) -> None:
    log = served.log()

    [line] = [line for line in log.splitlines() if "unauthenticated" in line]
    assert "WARNING" in line
    assert "accepting unauthenticated calls" in line
    assert "only because the service is bound to loopback (127.0.0.1)" in line
    assert str(served.data_dir / "needlecheck.sqlite3") in log


# --------------------------------------------------------------------------- healthchain as the client


class OrderSignRequest(CDSRequest):  # type: ignore[misc]
    """healthchain's CDSRequest keeping draftOrders/encounterId on the wire (0.16.1 drops them otherwise)."""

    context: OrderSignContext


class ClaimCreateContext(BaseHookContext):  # type: ignore[misc]
    """The claim-create hook context, which healthchain 0.16.1 does not have."""

    encounterId: str | None = None
    claim: dict[str, Any]


class ClaimCreateRequest(CDSRequest):  # type: ignore[misc]
    """A claim-create request for healthchain."""

    context: ClaimCreateContext


def fhir_authorization(token: str) -> FHIRAuthorization:
    """Bearer authorization for the test FHIR server."""
    return FHIRAuthorization(access_token=token, token_type="Bearer", expires_in=300, scope="patient/*.read",
                             subject="needlecheck")


def send_with_healthchain(served: ServedApp, service_id: str, request: CDSRequest) -> dict[str, Any]:
    """Send one request with healthchain's SandboxClient and return what it parsed, within a time bound."""
    # healthchain has no claim-create workflow; the workflow only picks request builders, which are not used.
    client = SandboxClient(url=served.url(f"/cds-services/{service_id}"), workflow="order-sign",
                           timeout=HTTP_TIMEOUT)
    client.requests = [request]
    pool = ThreadPoolExecutor(max_workers=1)
    try:
        responses = pool.submit(client.send_requests).result(timeout=60)  # its read timeout is unbounded
    finally:
        pool.shutdown(wait=False)
    [response] = responses
    assert isinstance(response, dict)
    return response


def warnings(response: dict[str, Any]) -> list[dict[str, Any]]:
    """The warning cards of a response."""
    return [card for card in response["cards"] if card["indicator"] == "warning"]


def healthchain_rule_ids(response: dict[str, Any]) -> list[str]:
    """Rule ids of the warning cards healthchain returned.

    healthchain re-serialises a response through its own Card model when that validates, which drops
    ``extension``; the rule id is then read from the detail text (``Rule **DN-...**``).
    """
    found = []
    for card in response["cards"]:
        if card["indicator"] != "warning":
            continue
        if "extension" in card:
            found.append(card["extension"][RULE_EXTENSION])
        else:
            match = re.search(r"Rule \*\*(DN-[A-Z]+-\d{3})\*\*", card.get("detail", ""))
            assert match, f"card without a rule id: {card}"
            found.append(match.group(1))
    return sorted(found)


@pytest.fixture
def no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """httpx (in healthchain) honours proxy variables; loopback calls must not go through one."""
    for variable in PROXY_VARIABLES:
        monkeypatch.delenv(variable, raising=False)


def order_sign_request(name: str, fhir: FhirTestServer | None = None) -> OrderSignRequest:
    """An order-sign fixture as a healthchain request, optionally pointed at a FHIR server."""
    body = load_request(name)
    extra: dict[str, Any] = {}
    if fhir is not None:
        extra = {"fhirServer": fhir.base_url, "fhirAuthorization": fhir_authorization(fhir.token)}
    return OrderSignRequest(hook="order-sign", hookInstance=body["hookInstance"],
                            context=OrderSignContext(**body["context"]), prefetch=body.get("prefetch"), **extra)


@pytest.mark.usefixtures("no_proxy")
def test_healthchain_order_sign_without_prefetch_fetches_from_the_fhir_server(
        served: ServedApp, fhir_server: FhirTestServer) -> None:
    name = "order-sign/server-no-prefetch.json"
    request = order_sign_request(name, fhir_server)
    wire = request.model_dump(exclude_none=True, mode="json")
    assert set(wire["context"]) == {"userId", "patientId", "encounterId", "draftOrders"}
    assert "prefetch" not in wire

    response = send_with_healthchain(served, "dry-needling-order-sign", request)

    assert response, "healthchain got an error and hid it as {} (see the served app's log)"
    assert healthchain_rule_ids(response) == sorted(MANIFEST[name]["expect_rules"]) == ["DN-CODE-002"]
    unchecked = [c for c in response["cards"] if c["indicator"] == "info" and "Rule **" not in c.get("detail", "")]
    assert not unchecked, "the history must be checked"
    [card] = warnings(response)
    assert "2026-03-10" in card["summary"]
    # The served app says which rules fired, and never logs the bearer token.
    log = log_matching(served.log, r"POST /cds-services/<service_id> 200 \S+ ms service=dry-needling-order-sign "
                                   r"rules=\S*DN-CODE-002 cards=\d")
    assert fhir_server.token not in log


@pytest.mark.usefixtures("no_proxy")
def test_healthchain_order_sign_with_full_prefetch(served: ServedApp) -> None:
    name = "order-sign/code001-20561-two-muscles.json"

    response = send_with_healthchain(served, "dry-needling-order-sign", order_sign_request(name))

    assert response, "healthchain got an error and hid it as {}"
    assert healthchain_rule_ids(response) == ["DN-CODE-001"]
    [card] = warnings(response)
    [suggestion] = card["suggestions"]
    [action] = suggestion["actions"]
    assert action["type"] == "update"
    codes = {c["code"] for c in action["resource"]["code"]["coding"] if c["system"] == CPT_SYSTEM}
    assert codes == {MANIFEST[name]["expect_code"]}


@pytest.mark.usefixtures("no_proxy")
def test_healthchain_claim_create_through_a_custom_context(
        served: ServedApp, fhir_server: FhirTestServer) -> None:
    name = "claim-create/server-referenced-procedure.json"
    body = load_request(name)
    request = ClaimCreateRequest(hook="claim-create", hookInstance=body["hookInstance"],
                                 context=ClaimCreateContext(**body["context"]), fhirServer=fhir_server.base_url,
                                 fhirAuthorization=fhir_authorization(fhir_server.token))
    assert set(request.model_dump(exclude_none=True, mode="json")["context"]) == {
        "userId", "patientId", "encounterId", "claim"}

    response = send_with_healthchain(served, "dry-needling-claim-create", request)

    assert response, "healthchain got an error and hid it as {}"
    assert healthchain_rule_ids(response) == sorted(MANIFEST[name]["expect_rules"]) == ["DN-CODE-001"]
    [card] = warnings(response)
    assert f"{MANIFEST[name]['muscle_count']} muscles" in card["summary"]
    [suggestion] = card["suggestions"]
    [action] = suggestion["actions"]
    [line] = action["resource"]["item"]
    assert {c["code"] for c in line["productOrService"]["coding"]} == {MANIFEST[name]["expect_code"]}


@pytest.mark.usefixtures("no_proxy")
def test_healthchain_without_the_workaround_drops_draft_orders_and_hides_the_400(
        served: ServedApp, caplog: pytest.LogCaptureFixture) -> None:
    """Why the subclass is needed: plain CDSRequest serialises only userId/patientId of the context."""
    caplog.set_level(logging.ERROR, logger="healthchain.sandbox.sandboxclient")
    body = load_request("order-sign/code001-20561-two-muscles.json")
    request = CDSRequest(hook="order-sign", context=OrderSignContext(**body["context"]), prefetch=body["prefetch"])
    assert set(request.model_dump(exclude_none=True, mode="json")["context"]) == {"userId", "patientId"}

    response = send_with_healthchain(served, "dry-needling-order-sign", request)

    assert response == {}
    assert "Error response 400" in caplog.text
    assert "context.draftOrders" in caplog.text
