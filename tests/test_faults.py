"""A broken EHR FHIR server, through a fault-injecting proxy in front of the real one (sekmet).

For every fault (hang-up, slow past the budget, a body dripped a byte at a time, 401/403/404/500, invalid
JSON, an endless ``next`` chain, a huge body) and for a refused connection and a stopped server behind the
proxy, both hooks must answer within the time budget with what they could check, plus an ``info`` card
naming what they could not; 412 only when a claim's billed Procedure cannot be had.

``tests/test_integration_fhir_server.py`` covers the real server stopped (connection refused) and a wrong
token without the proxy; these tests add the other faults and the time bound.

Each fault must be the only limit that can stop the service, however loaded the machine: a test that
depends on which of two limits comes first (a one-second budget against ten page round trips, or against
a 404 that a busy machine answers late) is a coin toss. So the faults of time (slow, drip) meet a short
budget and a server that would answer only after ``SERVER_DELAY``, far past it (the proxy ends those
answers when the next test begins); every other fault meets a budget of ``ROOMY_BUDGET``, which no answer
of this proxy comes near, so the card must name that fault and not the budget. "It does not hang" is then
the card naming the limit it should, plus an answer before the slow server's: no benchmark.
"""

from __future__ import annotations

import copy
import json
import logging
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from needlecheck.cds_hooks import fhir_pool
from needlecheck.cds_hooks.fhir_client import FhirLimits
from needlecheck.cds_hooks.invoke import run_hook
from needlecheck.cds_hooks.services import SERVICES
from tests.support.fault_proxy import Fault, FaultProxy
from tests.support.fhir_server import FhirTestServer
from tests.support.fixtures_fhir import FHIR_BUNDLE_PATH, read_bundle

REQUESTS = Path(__file__).resolve().parent.parent / "fixtures" / "requests"
SHORT_BUDGET = 1.0  # for the faults of time: every request is slow, so any budget trips; a short one is quick
SERVER_DELAY = 60.0  # how late a slow or dripping server would answer: an answer before it did not wait
ROOMY_BUDGET = 30.0  # for every other fault: no answer of the proxy comes near it, even on a loaded machine
# A slow search beside a read that passes through: the read must fit in the budget, the search never does.
PASS_THROUGH_BUDGET = 5.0
LIMITS = FhirLimits(time_budget_seconds=ROOMY_BUDGET, connect_timeout_seconds=5.0, max_pages=10,
                    max_response_bytes=1_000_000)
ALLOWED_SECONDS = SERVER_DELAY  # an answer before the slow server's did not wait for it (nor hang)
RULE_EXTENSION = "org.needlecheck.rule-id"
BILLED_ON_SERVER = "Procedure/nc-proc-20560-20260302"  # what claim-create/server-referenced-procedure.json bills


@dataclass(frozen=True)
class Case:
    """A fault, the words the service uses for it (any one of them), and the limits under which that fault
    is the only one that can stop the service."""

    fault: Fault
    problems: tuple[str, ...]
    limits: FhirLimits = LIMITS

    def __str__(self) -> str:
        return str(self.fault)


CASES = [
    Case(Fault.HANG_UP, ("unreachable",)),
    Case(Fault.SLOW, ("timed out", "time budget"), replace(LIMITS, time_budget_seconds=SHORT_BUDGET)),
    Case(Fault.DRIP, ("timed out", "time budget"), replace(LIMITS, time_budget_seconds=SHORT_BUDGET)),
    Case(Fault.UNAUTHORIZED, ("HTTP 401",)),
    Case(Fault.FORBIDDEN, ("HTTP 403",)),
    Case(Fault.NOT_FOUND, ("HTTP 404",)),
    Case(Fault.SERVER_ERROR, ("HTTP 500",)),
    Case(Fault.INVALID_JSON, ("not JSON",)),
    Case(Fault.ENDLESS_NEXT, ("more than 10 pages",)),
    Case(Fault.HUGE_BODY, (f"larger than {LIMITS.max_response_bytes} bytes",)),
]
# A read by id is not a Bundle: an endless next chain cannot break it.
READ_BREAKING = [case for case in CASES if case.fault is not Fault.ENDLESS_NEXT]
# The billed Procedure is read alongside the prefetch searches (cds_hooks/invoke.py): a search that takes the
# whole budget (slow, drip) must not starve the read the claim cannot do without.
HISTORY_FAILING = CASES


# ---------------------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module", autouse=True)
def warm_engine() -> None:
    """Run both hooks once without a FHIR server, so that loading the rules' data on first use (seconds, once
    per process) is not counted against the time bound of whichever test happens to come first."""
    with ThreadPoolExecutor(max_workers=2) as pool:
        for name in ("order-sign/code001-20561-two-muscles.json", "claim-create/code001-20561-two-muscles.json"):
            body = load_request(name)
            [service] = [s for s in SERVICES.values() if s.hook == body["hook"]]
            run_hook(service, body, LIMITS, pool)


@pytest.fixture(scope="module")
def proxy(fhir_server: FhirTestServer) -> Iterator[FaultProxy]:
    """One proxy in front of the session's FHIR server; each test sets its fault through ``faulty``."""
    with FaultProxy(fhir_server.base_url, slow_seconds=SERVER_DELAY, drip_interval=0.05) as running:
        yield running


@pytest.fixture(params=["one-by-one", "batch"])
def faulty(proxy: FaultProxy, request: pytest.FixtureRequest) -> Iterator[FaultProxy]:
    """The proxy, passing through and with nothing seen, back to that afterwards; the service sends it its
    queries one by one, or as batches (sekmet takes them, and the proxy then faults the whole batch)."""
    proxy.reset()
    fhir_pool.remember_batch_support(proxy.base_url + "/", request.param == "batch")
    yield proxy
    proxy.reset()


@pytest.fixture(autouse=True)
def roomy_budget(app: Flask) -> None:
    """The limits of the faults that are not about time; the rest of the app's settings stay as they are."""
    use_limits(app, LIMITS)


# ----------------------------------------------------------------------------------------------- helpers


def use_limits(app: Flask, limits: FhirLimits) -> None:
    """Make ``limits`` those of the app's next hook calls."""
    app.config["NEEDLECHECK_SETTINGS"] = replace(app.config["NEEDLECHECK_SETTINGS"], fhir=limits)


def inject(app: Flask, faulty: FaultProxy, case: Case, *, only: str | None = None,
           budget_at_least: float = 0.0) -> None:
    """Make the proxy misbehave as ``case`` says (on the requests matching ``only``), under its limits."""
    faulty.fault, faulty.only = case.fault, only
    limits = case.limits
    if limits.time_budget_seconds < budget_at_least:
        limits = replace(limits, time_budget_seconds=budget_at_least)
    use_limits(app, limits)


def load_request(name: str) -> dict[str, Any]:
    """A fresh copy of a request fixture."""
    body: dict[str, Any] = json.loads((REQUESTS / name).read_text(encoding="utf-8"))
    return body


def against(body: dict[str, Any], base_url: str, token: str, *, keep_prefetch: bool = True) -> dict[str, Any]:
    """``body`` pointed at a FHIR server with a bearer token (and without its prefetch, if asked)."""
    pointed = copy.deepcopy(body)
    pointed["fhirServer"] = base_url
    pointed["fhirAuthorization"] = {"access_token": token, "token_type": "Bearer", "expires_in": 300,
                                    "scope": "patient/*.read", "subject": "needlecheck"}
    if not keep_prefetch:
        pointed.pop("prefetch", None)
    return pointed


def timed_call(client: FlaskClient, body: dict[str, Any]) -> tuple[TestResponse, float]:
    """POST ``body`` to the service of its hook; the response and the wall time it took."""
    [service] = [s for s in SERVICES.values() if s.hook == body["hook"]]
    started = time.monotonic()
    response = client.post(f"/cds-services/{service.service_id}", json=body)
    return response, time.monotonic() - started


def cards_of(response: TestResponse) -> list[dict[str, Any]]:
    """The cards of a 200 response (fails with the body otherwise)."""
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    cards: list[dict[str, Any]] = response.get_json()["cards"]
    return cards


def rule_ids(cards: list[dict[str, Any]]) -> list[str]:
    """Sorted rule ids of the rule cards."""
    return sorted(card["extension"][RULE_EXTENSION] for card in cards if "extension" in card)


def the_unchecked_card(cards: list[dict[str, Any]]) -> dict[str, Any]:
    """The one ``info`` card saying which checks could not run."""
    [card] = [card for card in cards if card["indicator"] == "info" and "extension" not in card]
    return card


def names_one_of(text: str, problems: tuple[str, ...]) -> bool:
    """Whether ``text`` names the fault in one of the service's words for it."""
    return any(problem in text for problem in problems)


# ----------------------------------------------------------------------------------------- pass-through


def test_the_proxy_passing_through_changes_nothing(client: FlaskClient, faulty: FaultProxy,
                                                   fhir_server: FhirTestServer) -> None:
    order = against(load_request("order-sign/server-no-prefetch.json"), faulty.base_url, fhir_server.token)
    claim = against(load_request("claim-create/server-referenced-procedure.json"), faulty.base_url,
                    fhir_server.token)

    order_response, _ = timed_call(client, order)
    claim_response, _ = timed_call(client, claim)
    order_direct, _ = timed_call(client, {**order, "fhirServer": fhir_server.base_url})
    claim_direct, _ = timed_call(client, {**claim, "fhirServer": fhir_server.base_url})

    assert "DN-CODE-002" in rule_ids(cards_of(order_response)), "the history on the server was read"
    assert rule_ids(cards_of(order_response)) == rule_ids(cards_of(order_direct))
    assert rule_ids(cards_of(claim_response)) == rule_ids(cards_of(claim_direct))
    assert any(path.startswith("/fhir/Procedure?") for path in faulty.seen), "the history search went through"


# ------------------------------------------------------------------------------------- every fault, both hooks


@pytest.mark.parametrize("case", CASES, ids=str)
def test_order_sign_answers_in_time_with_the_checks_it_could_run(
        app: Flask, client: FlaskClient, faulty: FaultProxy, fhir_server: FhirTestServer, case: Case,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    inject(app, faulty, case)
    body = against(load_request("order-sign/code001-20561-two-muscles.json"), faulty.base_url, fhir_server.token,
                   keep_prefetch=False)

    response, seconds = timed_call(client, body)

    assert seconds < ALLOWED_SECONDS
    cards = cards_of(response)
    assert "DN-CODE-001" in rule_ids(cards), "the draft order alone decides DN-CODE-001"
    unchecked = the_unchecked_card(cards)
    assert names_one_of(unchecked["detail"], case.problems), unchecked["detail"]
    assert faulty.seen, "the service did ask the FHIR server"
    assert fhir_server.token not in response.get_data(as_text=True)
    assert fhir_server.token not in caplog.text


@pytest.mark.parametrize("case", CASES, ids=str)
def test_order_sign_without_history_does_not_guess(app: Flask, client: FlaskClient, faulty: FaultProxy,
                                                   fhir_server: FhirTestServer, case: Case) -> None:
    inject(app, faulty, case)
    body = against(load_request("order-sign/server-no-prefetch.json"), faulty.base_url, fhir_server.token)

    response, seconds = timed_call(client, body)

    assert seconds < ALLOWED_SECONDS
    cards = cards_of(response)
    assert "DN-CODE-002" not in rule_ids(cards), "DN-CODE-002 needs the history the server did not give"
    assert names_one_of(the_unchecked_card(cards)["detail"], case.problems)


@pytest.mark.parametrize("case", CASES, ids=str)
def test_claim_with_contained_procedures_is_checked_in_time(app: Flask, client: FlaskClient, faulty: FaultProxy,
                                                            fhir_server: FhirTestServer, case: Case) -> None:
    inject(app, faulty, case)
    body = against(load_request("claim-create/code001-20561-two-muscles.json"), faulty.base_url,
                   fhir_server.token, keep_prefetch=False)

    response, seconds = timed_call(client, body)

    assert seconds < ALLOWED_SECONDS
    cards = cards_of(response)
    assert "DN-CODE-001" in rule_ids(cards)
    assert names_one_of(the_unchecked_card(cards)["detail"], case.problems)


@pytest.mark.parametrize("case", READ_BREAKING, ids=str)
def test_claim_whose_billed_procedure_cannot_be_read_is_412_in_time(
        app: Flask, client: FlaskClient, faulty: FaultProxy, fhir_server: FhirTestServer, case: Case) -> None:
    inject(app, faulty, case)
    body = against(load_request("claim-create/server-referenced-procedure.json"), faulty.base_url,
                   fhir_server.token)

    response, seconds = timed_call(client, body)

    assert seconds < ALLOWED_SECONDS
    assert response.status_code == 412, response.get_data(as_text=True)[:500]
    [issue] = response.get_json()["issue"]
    assert issue["expression"] == ["context.claim.procedure"]
    assert BILLED_ON_SERVER in issue["diagnostics"]
    assert names_one_of(issue["diagnostics"], case.problems), issue["diagnostics"]


@pytest.mark.parametrize("case", HISTORY_FAILING, ids=str)
def test_claim_whose_history_search_fails_is_decided_on_the_billed_procedure(
        app: Flask, client: FlaskClient, faulty: FaultProxy, fhir_server: FhirTestServer, case: Case) -> None:
    # Searches fail; the read by id passes through, and the budget leaves it room however slow the searches.
    inject(app, faulty, case, only="/Procedure?", budget_at_least=PASS_THROUGH_BUDGET)
    body = against(load_request("claim-create/server-referenced-procedure.json"), faulty.base_url,
                   fhir_server.token)

    response, seconds = timed_call(client, body)

    assert seconds < ALLOWED_SECONDS
    cards = cards_of(response)
    assert f"/fhir/{BILLED_ON_SERVER}" in faulty.seen
    assert "DN-CODE-002" not in rule_ids(cards), "same-date history could not be read"
    assert names_one_of(the_unchecked_card(cards)["detail"], case.problems)


# --------------------------------------------------------------------- nobody listening, or nobody behind


@pytest.fixture
def refusing_proxy(fhir_server: FhirTestServer) -> FaultProxy:
    """A proxy that was stopped: connections to its base URL are refused."""
    stopped = FaultProxy(fhir_server.base_url).start()
    stopped.stop()
    return stopped


@pytest.fixture
def proxy_to_a_stopped_server(fresh_fhir_server: FhirTestServer) -> Iterator[tuple[FaultProxy, str]]:
    """A passing-through proxy whose FHIR server (loaded, then stopped) is gone: the proxy answers 502."""
    fresh_fhir_server.load(read_bundle(FHIR_BUNDLE_PATH))
    fresh_fhir_server.stop()
    with FaultProxy(fresh_fhir_server.base_url) as gateway:
        yield gateway, fresh_fhir_server.token


def test_refused_connections_degrade_both_hooks_in_time(client: FlaskClient, refusing_proxy: FaultProxy,
                                                        fhir_server: FhirTestServer) -> None:
    order = against(load_request("order-sign/code001-20561-two-muscles.json"), refusing_proxy.base_url,
                    fhir_server.token, keep_prefetch=False)
    claim = against(load_request("claim-create/server-referenced-procedure.json"), refusing_proxy.base_url,
                    fhir_server.token)

    order_response, order_seconds = timed_call(client, order)
    claim_response, claim_seconds = timed_call(client, claim)

    assert max(order_seconds, claim_seconds) < ALLOWED_SECONDS
    order_cards = cards_of(order_response)
    assert "DN-CODE-001" in rule_ids(order_cards)
    assert "unreachable" in the_unchecked_card(order_cards)["detail"]
    assert claim_response.status_code == 412
    assert "unreachable" in claim_response.get_json()["issue"][0]["diagnostics"]


def test_a_stopped_server_behind_a_gateway_degrades_both_hooks_in_time(
        client: FlaskClient, proxy_to_a_stopped_server: tuple[FaultProxy, str]) -> None:
    gateway, token = proxy_to_a_stopped_server
    order = against(load_request("order-sign/server-no-prefetch.json"), gateway.base_url, token)
    claim = against(load_request("claim-create/code001-20561-two-muscles.json"), gateway.base_url, token,
                    keep_prefetch=False)

    order_response, order_seconds = timed_call(client, order)
    claim_response, claim_seconds = timed_call(client, claim)

    assert max(order_seconds, claim_seconds) < ALLOWED_SECONDS
    order_cards = cards_of(order_response)
    assert "DN-CODE-002" not in rule_ids(order_cards)
    assert "HTTP 502" in the_unchecked_card(order_cards)["detail"]
    claim_cards = cards_of(claim_response)
    assert "DN-CODE-001" in rule_ids(claim_cards)
    assert "HTTP 502" in the_unchecked_card(claim_cards)["detail"]
