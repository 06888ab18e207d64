"""How a hook call without prefetch asks the real FHIR server (sekmet) for its data: in as few rounds as it can.

The parties an order names are asked beside the prefetch searches, not after them; a server that takes batch
Bundles gets the call's queries in one; an ``_include`` the server says it used is not read again. What the
service asked is seen from the client (``FhirClient.get``/``batch``), the order of asking and answering from
a spy that holds each answer back until the call's first queries have all gone out: a query sent only once
an answer is in therefore shows up after that answer. No timing is asserted.
"""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from needlecheck.cds_hooks import fhir_pool
from needlecheck.cds_hooks.fhir_client import FhirClient, FhirLimits, FhirUnavailable
from needlecheck.cds_hooks.invoke import HookResult, run_hook
from needlecheck.cds_hooks.prefetch import KeyStatus, render_template
from needlecheck.cds_hooks.services import ORDER_SIGN, PATIENT_PREFETCH
from tests.support.fhir_server import FhirTestServer
from tests.support.fixtures_fhir import FHIR_BUNDLE_PATH, read_bundle
from tests.test_scope_fallback import against
from tests.test_scope_fallback import therapist_order as order_for_the_therapist

LIMITS = FhirLimits(time_budget_seconds=30.0, connect_timeout_seconds=10.0)  # guards against a hang only
HOLD_SECONDS = 10.0  # how long an answer waits for the queries that should have gone out with it
THERAPIST = {"resourceType": "Practitioner", "id": "nc-prac-pt-ca", "name": [{"family": "Reyes", "given": ["Ana"]}]}
SACRAMENTO = {"resourceType": "Location", "id": "nc-loc-sacramento", "name": "Sacramento clinic",
              "address": {"city": "Sacramento", "state": "CA", "postalCode": "95814", "country": "US"}}
PARTY_QUERIES = ["Practitioner/nc-prac-pt-ca", "Location/nc-loc-sacramento",
                 "PractitionerRole?practitioner=nc-prac-pt-ca"
                 "&_include=PractitionerRole:location&_include=PractitionerRole:organization"]


def put(*resources: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": r, "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"}} for r in resources]}


@pytest.fixture
def server() -> Iterator[FhirTestServer]:
    """The shared record plus a therapist and a location no prefetch key carries."""
    with FhirTestServer() as fhir:
        fhir.load(read_bundle(FHIR_BUNDLE_PATH))
        fhir.load(put(THERAPIST, SACRAMENTO))
        yield fhir


@pytest.fixture
def pool() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(max_workers=16) as executor:
        yield executor


def therapist_order(fhir: FhirTestServer) -> dict[str, Any]:
    """The clean order without prefetch, to be performed by the therapist in Sacramento, pointed at ``fhir``."""
    return against(order_for_the_therapist(prefetch=False), fhir)


def key_queries(body: dict[str, Any]) -> list[str]:
    context = body["context"]
    values = {"context.patientId": context["patientId"], "userPractitionerId": context["userId"].split("/")[-1]}
    return [q for key in PATIENT_PREFETCH if key.checks and (q := render_template(key.template, values))]


class Asking:
    """Spies on ``FhirClient``: the queries sent (``sent``), the batches, and the order of sending and answering.

    Every answer is held back until each of ``first`` has been sent (or ``HOLD_SECONDS`` passed), so a query
    the service sends only after an answer comes after that answer in ``events``.
    """

    def __init__(self, monkeypatch: pytest.MonkeyPatch, first: list[str]) -> None:
        self.first = set(first)
        self.sent: list[str] = []
        self.batches: list[list[str]] = []
        self.events: list[tuple[str, str]] = []
        self._all_sent = threading.Event()
        self._lock = threading.Lock()
        real_get, real_batch = FhirClient.get, FhirClient.batch

        def get(client: FhirClient, query: str) -> dict[str, Any]:
            if query == "metadata":
                return real_get(client, query)
            self._sending([query])
            try:
                return real_get(client, query)
            finally:
                self._answering([query])

        def batch(client: FhirClient, queries: list[str]) -> list[dict[str, Any] | FhirUnavailable]:
            with self._lock:
                self.batches.append(list(queries))
            self._sending(queries)
            try:
                return real_batch(client, queries)
            finally:
                self._answering(queries)

        monkeypatch.setattr(FhirClient, "get", get)
        monkeypatch.setattr(FhirClient, "batch", batch)

    def _sending(self, queries: list[str]) -> None:
        with self._lock:
            self.sent.extend(queries)
            self.events.extend(("sent", query) for query in queries)
            if self.first <= set(self.sent):
                self._all_sent.set()

    def _answering(self, queries: list[str]) -> None:
        self._all_sent.wait(HOLD_SECONDS)
        with self._lock:
            self.events.extend(("answered", query) for query in queries)

    def sent_before_any_answer(self) -> set[str]:
        """The queries sent before the first answer came back."""
        first_answer = next((i for i, (what, _) in enumerate(self.events) if what == "answered"), len(self.events))
        return {query for what, query in self.events[:first_answer] if what == "sent"}


def hook(body: dict[str, Any], pool: ThreadPoolExecutor) -> HookResult:
    return run_hook(ORDER_SIGN, copy.deepcopy(body), LIMITS, pool)


@pytest.mark.parametrize("batches", [False, True], ids=["one-by-one", "batch"])
def test_the_parties_an_order_names_are_asked_beside_the_prefetch_searches(
        server: FhirTestServer, pool: ThreadPoolExecutor, monkeypatch: pytest.MonkeyPatch, batches: bool) -> None:
    body = therapist_order(server)
    fhir_pool.remember_batch_support(server.base_url + "/", batches)
    first = key_queries(body) + PARTY_QUERIES
    asking = Asking(monkeypatch, first)

    result = hook(body, pool)

    assert set(first) <= asking.sent_before_any_answer()
    assert sorted(asking.sent) == sorted(first), "each query once, and nothing more to ask after the answers"
    assert [sorted(batch) for batch in asking.batches] == ([sorted(first)] if batches else [])
    scope = [f for f in result.findings if f.rule_id == "DN-SCOPE-001"]
    assert scope and "Practitioner/nc-prac-pt-ca" in scope[0].detail, "decided on what the server answered"


def test_the_signers_reads_are_asked_once_for_prefetch_and_as_performer(
        server: FhirTestServer, pool: ThreadPoolExecutor, monkeypatch: pytest.MonkeyPatch) -> None:
    body = therapist_order(server)
    order = body["context"]["draftOrders"]["entry"][0]["resource"]
    order["performer"] = [{"reference": body["context"]["userId"]}]  # the signer performs it
    fhir_pool.remember_batch_support(server.base_url + "/", False)
    asking = Asking(monkeypatch, key_queries(body))

    hook(body, pool)

    assert sorted(asking.sent) == sorted([*key_queries(body), "Location/nc-loc-sacramento"])


def test_an_include_the_server_used_is_not_read_again(
        server: FhirTestServer, pool: ThreadPoolExecutor, monkeypatch: pytest.MonkeyPatch) -> None:
    coverage = next(e["resource"] for e in read_bundle(FHIR_BUNDLE_PATH)["entry"]
                    if e["resource"]["resourceType"] == "Coverage")
    server.load(put({**coverage, "payor": [{"reference": "Organization/nc-org-not-on-the-server"}]}))
    body = therapist_order(server)
    fhir_pool.remember_batch_support(server.base_url + "/", False)
    asking = Asking(monkeypatch, [])

    result = hook(body, pool)

    assert result.prefetch["coverage"].status is KeyStatus.FETCHED
    assert [r["resourceType"] for r in result.prefetch["coverage"].resources] == ["Coverage"]
    assert "Organization/nc-org-not-on-the-server" not in asking.sent  # sekmet's self link names the _include


def test_a_server_is_sent_batches_once_its_capability_statement_is_read(
        server: FhirTestServer, pool: ThreadPoolExecutor, monkeypatch: pytest.MonkeyPatch) -> None:
    body = therapist_order(server)
    base = server.base_url + "/"
    fhir_pool.forget_batch_support(base)
    asking = Asking(monkeypatch, [])

    first = hook(body, pool)
    deadline = time.monotonic() + 30
    while fhir_pool.batch_support(base) is None and time.monotonic() < deadline:
        time.sleep(0.01)  # the CapabilityStatement read runs beside the first call, which does not wait for it
    second = hook(body, pool)

    assert fhir_pool.batch_support(base) is True  # sekmet lists the batch interaction
    assert asking.batches and len(asking.batches[-1]) == len(key_queries(body)) + len(PARTY_QUERIES)
    assert first.body == second.body
