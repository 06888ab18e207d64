"""The service against a REAL FHIR server (sekmet, in-process): prefetch semantics, paging, outages.

Every request goes through the Flask test client of ``tests/conftest.py`` (which checks each 200
response for CDS Hooks card conformance) with ``fhirServer``/``fhirAuthorization`` injected. Two
spies show what the service did, without replacing anything it does:

* every ``FhirClient.get`` query and every query of a ``FhirClient.batch`` (the reads, searches and paging
  links sent to the server; not the CapabilityStatement read that tells whether the server takes batches), and
* the ``HookResult`` of each call, whose per-key ``KeyStatus`` says how each prefetch key was
  satisfied (provided, null, fetched, failed).

Assertions are on rule ids (``card["extension"]["org.needlecheck.rule-id"]``) and on those two.
"""

from __future__ import annotations

import copy
import json
import logging
import secrets
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from needlecheck.cds_hooks.fhir_client import FhirClient, FhirUnavailable
from needlecheck.cds_hooks.invoke import HookResult, run_hook
from needlecheck.cds_hooks.prefetch import KeyStatus, render_template
from needlecheck.cds_hooks.services import PATIENT_PREFETCH, SERVICES
from needlecheck.mappings.cpt import CPT_SYSTEM
from tests.support.fhir_server import FhirTestServer
from tests.support.fixtures_fhir import FHIR_BUNDLE_PATH, read_bundle
from tests.support.medplum_server import MedplumTestServer

REQUESTS = Path(__file__).resolve().parent.parent / "fixtures" / "requests"
MANIFEST: dict[str, dict[str, Any]] = {
    case["file"]: case for case in yaml.safe_load((REQUESTS / "manifest.yaml").read_text(encoding="utf-8"))
}
# Requests whose records are on the shared server (the Medicare patient has a server of its own).
FULL_PREFETCH = sorted(name for name, case in MANIFEST.items()
                       if not case.get("needs_fhir_server") and not case.get("server_bundle"))
SERVER_ONLY = sorted(name for name, case in MANIFEST.items() if case.get("needs_fhir_server"))

RULE_EXTENSION = "org.needlecheck.rule-id"
PATIENT = "nc-pat-1"


def _history_query() -> str:
    template = next(key for key in PATIENT_PREFETCH if key.name == "priorProcedures").template
    query = render_template(template, {"context.patientId": PATIENT})
    assert query is not None
    return query


HISTORY_QUERY = _history_query()
CONDITION_QUERY = f"Condition?patient={PATIENT}"


def used_key_queries(request: dict[str, Any]) -> list[str]:
    """The queries of every prefetch key a rule reads, rendered for ``request``'s context."""
    context = request["context"]
    values = {"context.patientId": context["patientId"], "userPractitionerId": context["userId"].split("/")[-1]}
    if "encounterId" in context:
        values["context.encounterId"] = context["encounterId"]
    queries = [render_template(key.template, values) for key in PATIENT_PREFETCH if key.checks]
    return sorted(query for query in queries if query)
SERVER_HISTORY_0310 = "nc-proc-20561-20260310"  # CPT 20561 on the date of order-sign/server-no-prefetch.json
BILLED_ON_SERVER = "Procedure/nc-proc-20560-20260302"  # what claim-create/server-referenced-procedure.json bills
OPERATION_OUTCOME = {
    "resourceType": "OperationOutcome",
    "issue": [{"severity": "error", "code": "too-costly", "diagnostics": "prefetch query not run by the EHR"}],
}


# ---------------------------------------------------------------------------------------------- helpers


@dataclass
class Observed:
    """What the service asked the FHIR server for, and the HookResult of each call."""

    queries: list[str] = field(default_factory=list)
    results: list[HookResult] = field(default_factory=list)
    batches: list[list[str]] = field(default_factory=list)  # the queries of each batch, also in ``queries``
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def last(self) -> HookResult:
        """The HookResult of the most recent successful call."""
        assert self.results, "the service produced no HookResult (the call failed before deciding)"
        return self.results[-1]

    def status(self, key: str) -> KeyStatus:
        """How the last call satisfied prefetch ``key``."""
        return self.last.prefetch[key].status

    def resource_ids(self, key: str) -> set[str]:
        """``Type/id`` of every resource the last call had for prefetch ``key``."""
        return {f"{r['resourceType']}/{r['id']}" for r in self.last.prefetch[key].resources if "id" in r}

    def reset(self) -> None:
        """Forget earlier calls."""
        with self._lock:
            self.queries.clear()
            self.results.clear()
            self.batches.clear()


AnyFhirServer = FhirTestServer | MedplumTestServer


@pytest.fixture(params=["sekmet", "medplum"])
def fallback_server(request: pytest.FixtureRequest) -> AnyFhirServer:
    """Each FHIR-fallback test runs against sekmet and against Medplum, both loaded with the shared Bundle."""
    server: AnyFhirServer = request.getfixturevalue("fhir_server" if request.param == "sekmet" else "medplum_server")
    return server


@pytest.fixture
def observed(monkeypatch: pytest.MonkeyPatch) -> Observed:
    """Record every FHIR query the service makes and every HookResult, calling through to the real code."""
    seen = Observed()
    real_get = FhirClient.get
    real_batch = FhirClient.batch

    def recording_get(self: FhirClient, query: str) -> dict[str, Any]:
        if query != "metadata":
            with seen._lock:
                seen.queries.append(query)
        return real_get(self, query)

    def recording_batch(self: FhirClient, queries: list[str]) -> list[dict[str, Any] | FhirUnavailable]:
        with seen._lock:
            seen.queries.extend(queries)
            seen.batches.append(list(queries))
        return real_batch(self, queries)

    def recording_run_hook(*args: Any, **kwargs: Any) -> HookResult:
        result = run_hook(*args, **kwargs)
        with seen._lock:
            seen.results.append(result)
        return result

    monkeypatch.setattr(FhirClient, "get", recording_get)
    monkeypatch.setattr(FhirClient, "batch", recording_batch)
    monkeypatch.setattr("needlecheck.cds_hooks.app.run_hook", recording_run_hook)
    return seen


def load_request(name: str) -> dict[str, Any]:
    """A fresh copy of a request fixture."""
    body: dict[str, Any] = json.loads((REQUESTS / name).read_text(encoding="utf-8"))
    return body


def authorization(token: str) -> dict[str, Any]:
    """A CDS Hooks ``fhirAuthorization`` object carrying ``token``."""
    return {"access_token": token, "token_type": "Bearer", "expires_in": 300, "scope": "patient/*.read",
            "subject": "needlecheck"}


def against(body: dict[str, Any], base_url: str, token: str) -> dict[str, Any]:
    """``body`` pointed at a FHIR server with a bearer token."""
    pointed = copy.deepcopy(body)
    pointed["fhirServer"] = base_url
    pointed["fhirAuthorization"] = authorization(token)
    return pointed


def service_url(body: dict[str, Any]) -> str:
    """The endpoint of the service that answers ``body['hook']``."""
    [service] = [s for s in SERVICES.values() if s.hook == body["hook"]]
    return f"/cds-services/{service.service_id}"


def call(client: FlaskClient, body: dict[str, Any]) -> TestResponse:
    """POST ``body`` to its service."""
    return client.post(service_url(body), json=body)


def cards_of(response: TestResponse) -> list[dict[str, Any]]:
    """The cards of a 200 response (fails with the body otherwise)."""
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    assert isinstance(body, dict)
    cards: list[dict[str, Any]] = body["cards"]
    return cards


def rule_ids(cards: list[dict[str, Any]]) -> list[str]:
    """Sorted rule ids of the warning cards (the manifest's ``expect_rules``)."""
    return sorted(card["extension"][RULE_EXTENSION] for card in cards
                  if "extension" in card and card["indicator"] == "warning")


def warning_cards(cards: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The cards that report a problem (info cards about coverage or documentation left out)."""
    return [card for card in cards if card["indicator"] == "warning"]


def unchecked_cards(cards: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The ``info`` cards saying which checks could not run."""
    return [card for card in cards if card["indicator"] == "info" and "extension" not in card]


def suggested_codes(cards: list[dict[str, Any]]) -> set[str]:
    """Every CPT code an update action proposes."""
    codes: set[str] = set()
    for card in cards:
        for suggestion in card.get("suggestions", []):
            for action in suggestion["actions"]:
                resource = action["resource"]
                concepts = [resource.get("code")] + [item.get("productOrService") for item in resource.get("item", [])]
                codes |= {c["code"] for concept in concepts if concept for c in concept.get("coding", [])
                          if c.get("system") == CPT_SYSTEM}
    return codes


def history_first_page(server: FhirTestServer, count: int = 5) -> dict[str, Any]:
    """The first page of the history search, fetched from sekmet by the test itself."""
    response = requests.get(f"{server.base_url}/{HISTORY_QUERY}&_count={count}", headers=server.auth_headers,
                            timeout=10)
    assert response.status_code == 200, response.text
    page: dict[str, Any] = response.json()
    return page


def page_ids(bundle: dict[str, Any]) -> set[str]:
    """Ids of the resources of one Bundle page."""
    return {entry["resource"]["id"] for entry in bundle.get("entry", [])}


def next_url(bundle: dict[str, Any]) -> str | None:
    """The ``next`` link of a Bundle page."""
    return next((link["url"] for link in bundle.get("link", []) if link["relation"] == "next"), None)


# ------------------------------------------------------------------ no prefetch: everything from the server


@pytest.mark.parametrize("name", SERVER_ONLY)
def test_requests_without_prefetch_give_the_manifest_rules(
        name: str, client: FlaskClient, fallback_server: AnyFhirServer, observed: Observed) -> None:
    case = MANIFEST[name]
    body = load_request(name)
    assert "prefetch" not in body

    cards = cards_of(call(client, against(body, fallback_server.base_url, fallback_server.token)))

    assert rule_ids(cards) == sorted(case["expect_rules"])
    assert not unchecked_cards(cards), "the server answered, so every check must have run"
    # The history and the diagnoses came from the server, with the CPT system on every code value.
    assert HISTORY_QUERY in observed.queries
    assert CONDITION_QUERY in observed.queries
    assert observed.status("priorProcedures") is KeyStatus.FETCHED
    assert observed.status("conditions") is KeyStatus.FETCHED
    if "expect_code" in case:
        assert case["expect_code"] in suggested_codes(cards)
        [card] = [c for c in cards if c["extension"][RULE_EXTENSION] == "DN-CODE-001"]
        assert f"{case['muscle_count']} muscle" in card["summary"]


def test_history_on_the_server_fires_code002(
        client: FlaskClient, fallback_server: AnyFhirServer, observed: Observed) -> None:
    body = against(load_request("order-sign/server-no-prefetch.json"), fallback_server.base_url, fallback_server.token)

    cards = cards_of(call(client, body))

    assert rule_ids(cards) == ["DN-CODE-002"]
    assert f"Procedure/{SERVER_HISTORY_0310}" in observed.resource_ids("priorProcedures")
    [card] = warning_cards(cards)
    assert "2026-03-10" in card["summary"]


def test_local_code_20561_and_other_patients_do_not_match(
        client: FlaskClient, fallback_server: AnyFhirServer, observed: Observed) -> None:
    body = against(load_request("order-sign/server-no-prefetch-local-code-trap.json"),
                   fallback_server.base_url, fallback_server.token)

    cards = cards_of(call(client, body))

    assert warning_cards(cards) == [] and unchecked_cards(cards) == []
    fetched = observed.resource_ids("priorProcedures")
    assert len(fetched) == 16
    assert "Procedure/nc-proc-local-20561-20260318" not in fetched
    assert not {ref for ref in fetched if "-p2-" in ref}, "another patient's Procedures were returned"


def test_referenced_procedure_comes_from_the_server(
        client: FlaskClient, fallback_server: AnyFhirServer, observed: Observed) -> None:
    name = "claim-create/server-referenced-procedure.json"
    body = against(load_request(name), fallback_server.base_url, fallback_server.token)

    cards = cards_of(call(client, body))

    assert rule_ids(cards) == ["DN-CODE-001"]
    assert MANIFEST[name]["expect_code"] in suggested_codes(cards)
    # It arrived with the history search; being the billed Procedure, it is not a same-date prior session.
    assert BILLED_ON_SERVER in observed.resource_ids("priorProcedures")
    assert "DN-CODE-002" not in rule_ids(cards)


def test_referenced_procedure_is_read_by_id_when_history_is_null(
        client: FlaskClient, fallback_server: AnyFhirServer, observed: Observed) -> None:
    name = "claim-create/server-referenced-procedure.json"
    body = against(load_request(name), fallback_server.base_url, fallback_server.token)
    body["prefetch"] = {"priorProcedures": None}

    cards = cards_of(call(client, body))

    assert BILLED_ON_SERVER in observed.queries, "the billed Procedure must be read from the server"
    assert HISTORY_QUERY not in observed.queries
    assert rule_ids(cards) == ["DN-CODE-001"]
    assert MANIFEST[name]["expect_code"] in suggested_codes(cards)


def test_referenced_procedure_missing_on_the_server_is_412(
        client: FlaskClient, fallback_server: AnyFhirServer, observed: Observed) -> None:
    body = against(load_request("claim-create/server-referenced-procedure.json"),
                   fallback_server.base_url, fallback_server.token)
    body["context"]["claim"]["procedure"][0]["procedureReference"]["reference"] = "Procedure/nc-proc-does-not-exist"

    response = call(client, body)

    assert response.status_code == 412
    outcome = response.get_json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert "Procedure/nc-proc-does-not-exist" in outcome["issue"][0]["diagnostics"]
    assert "Procedure/nc-proc-does-not-exist" in observed.queries


def test_claim_referencing_another_patients_procedure_is_not_decided_on_it(
        client: FlaskClient, fallback_server: AnyFhirServer, observed: Observed) -> None:
    """A Procedure read by id is not constrained by ``patient=``: its subject must be the context patient.

    The claim is for nc-pat-1 but bills nc-pat-2's Procedure (same date, CPT 20560, 2 muscles). The
    decision's required data (this patient's billed Procedure) is missing, so the answer is 412, not
    cards computed from, and naming the muscles of, another patient's record.
    """
    other = "Procedure/nc-proc-p2-20560-20260302"
    body = against(load_request("claim-create/server-referenced-procedure.json"),
                   fallback_server.base_url, fallback_server.token)
    body["context"]["claim"]["procedure"][0]["procedureReference"]["reference"] = other

    response = call(client, body)

    assert other in observed.queries  # the read itself is fine; using the result is not
    assert response.status_code == 412, (
        f"cards were computed from another patient's Procedure: {response.get_data(as_text=True)[:600]}")
    outcome = response.get_json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["expression"] == ["context.claim.procedure"]


# ------------------------------------------------------------ partial prefetch, OperationOutcome, null


def billed_reads(body: dict[str, Any]) -> list[str]:
    """The reads by id of billed Procedures that neither the claim nor the remaining prefetch holds: they
    start alongside the prefetch searches, before those could turn them up."""
    claim = body["context"].get("claim") or {}
    held = set()
    for value in (body.get("prefetch") or {}).values():
        entries = value.get("entry", []) if isinstance(value, dict) and value.get("resourceType") == "Bundle" else [
            {"resource": value}]
        held |= {f"{e['resource']['resourceType']}/{e['resource'].get('id')}" for e in entries
                 if isinstance(e.get("resource"), dict)}
    references = [p["procedureReference"]["reference"] for p in claim.get("procedure", [])]
    return [ref for ref in references if not ref.startswith("#") and ref not in held]


def _drop(body: dict[str, Any], *keys: str) -> dict[str, Any]:
    trimmed = copy.deepcopy(body)
    for key in keys:
        del trimmed["prefetch"][key]
    return trimmed


@pytest.mark.parametrize("name", FULL_PREFETCH)
def test_dropping_prior_procedures_fetches_it_and_gives_the_full_prefetch_result(
        name: str, client: FlaskClient, fallback_server: AnyFhirServer, observed: Observed) -> None:
    full = against(load_request(name), fallback_server.base_url, fallback_server.token)

    full_response = call(client, full)
    assert observed.queries == [], "with full prefetch the service must not query the server"
    assert observed.status("priorProcedures") is KeyStatus.PROVIDED
    observed.reset()
    partial = _drop(full, "priorProcedures")
    partial_response = call(client, partial)

    assert sorted(observed.queries) == sorted([HISTORY_QUERY, *billed_reads(partial)])
    assert observed.status("priorProcedures") is KeyStatus.FETCHED
    assert observed.status("conditions") is KeyStatus.PROVIDED
    assert partial_response.get_json() == full_response.get_json()
    assert rule_ids(cards_of(partial_response)) == sorted(MANIFEST[name]["expect_rules"])


@pytest.mark.parametrize("name", FULL_PREFETCH)
def test_dropping_every_prefetch_key_gives_the_full_prefetch_result(
        name: str, client: FlaskClient, fallback_server: AnyFhirServer, observed: Observed) -> None:
    full = against(load_request(name), fallback_server.base_url, fallback_server.token)
    bare = copy.deepcopy(full)
    del bare["prefetch"]

    full_response = call(client, full)
    observed.reset()
    bare_response = call(client, bare)

    # Medplum ignores _include: the payor and practice Organization/Location are then read by reference.
    included_reads = [query for query in observed.queries
                      if "?" not in query and query.split("/")[0] in ("Organization", "Location")]
    assert bool(included_reads) is isinstance(fallback_server, MedplumTestServer)
    assert sorted(observed.queries) == sorted(used_key_queries(full) + billed_reads(bare) + included_reads)
    assert bare_response.get_json() == full_response.get_json()


def test_dropped_prior_procedures_holding_the_billed_procedure_is_fetched(
        client: FlaskClient, fallback_server: AnyFhirServer, observed: Observed) -> None:
    """The billed Procedure is only in priorProcedures; without it the claim can only be checked from the server."""
    name = "claim-create/clean-20560-referenced-prior-procedure.json"
    body = _drop(against(load_request(name), fallback_server.base_url, fallback_server.token), "priorProcedures")

    cards = cards_of(call(client, body))

    assert warning_cards(cards) == [] and unchecked_cards(cards) == []
    assert BILLED_ON_SERVER in observed.resource_ids("priorProcedures")


@pytest.mark.parametrize("key", ["priorProcedures", "conditions"])
def test_operation_outcome_as_prefetch_value_means_fetch_it(
        key: str, client: FlaskClient, fallback_server: AnyFhirServer, observed: Observed) -> None:
    name = "claim-create/code002-prior-procedure-same-date.json"
    full = against(load_request(name), fallback_server.base_url, fallback_server.token)
    full_response = call(client, full)
    observed.reset()
    body = copy.deepcopy(full)
    body["prefetch"][key] = OPERATION_OUTCOME

    response = call(client, body)

    assert observed.status(key) is KeyStatus.FETCHED
    assert observed.queries == [HISTORY_QUERY if key == "priorProcedures" else CONDITION_QUERY]
    assert rule_ids(cards_of(response)) == ["DN-CODE-002"]
    assert response.get_json() == full_response.get_json()


def test_null_prior_procedures_means_no_history_and_is_not_fetched(
        client: FlaskClient, fallback_server: AnyFhirServer, observed: Observed) -> None:
    body = against(load_request("order-sign/server-no-prefetch.json"), fallback_server.base_url, fallback_server.token)
    # Control: without the key, the server's history makes DN-CODE-002 fire.
    assert rule_ids(cards_of(call(client, body))) == ["DN-CODE-002"]
    observed.reset()
    body["prefetch"] = {"priorProcedures": None}

    cards = cards_of(call(client, body))

    assert observed.status("priorProcedures") is KeyStatus.NULL
    assert HISTORY_QUERY not in observed.queries
    assert not any(query.startswith("Procedure") for query in observed.queries)
    assert warning_cards(cards) + unchecked_cards(cards) == [], \
        "null is 'no data', not a failure: no DN-CODE-002 and no 'not checked' card"


def test_null_prior_procedures_in_a_claim_drops_the_same_date_history(
        client: FlaskClient, fallback_server: AnyFhirServer, observed: Observed) -> None:
    body = against(load_request("claim-create/code002-prior-procedure-same-date.json"),
                   fallback_server.base_url, fallback_server.token)
    body["prefetch"]["priorProcedures"] = None

    cards = cards_of(call(client, body))

    assert observed.queries == []
    assert warning_cards(cards) == [] and unchecked_cards(cards) == []


# ---------------------------------------------------------------------------------------------- paging


def test_paged_prefetch_is_followed_on_the_server(
        client: FlaskClient, fhir_server: FhirTestServer, observed: Observed) -> None:
    first = history_first_page(fhir_server)
    # Preconditions: the Procedure the rule needs is NOT on the page given in prefetch.
    assert first["total"] == 16
    assert len(first["entry"]) == 5
    assert SERVER_HISTORY_0310 not in page_ids(first)
    assert next_url(first) is not None
    body = against(load_request("order-sign/server-no-prefetch.json"), fhir_server.base_url, fhir_server.token)
    body["prefetch"] = {"priorProcedures": first}

    cards = cards_of(call(client, body))

    assert rule_ids(cards) == ["DN-CODE-002"]
    assert observed.status("priorProcedures") is KeyStatus.PROVIDED
    assert f"Procedure/{SERVER_HISTORY_0310}" in observed.resource_ids("priorProcedures")
    assert len(observed.last.prefetch["priorProcedures"].resources) == 16
    # It followed the three next links (offsets 5, 10, 15) and did not run the search again.
    paging = [query for query in observed.queries if query.startswith(fhir_server.base_url + "/Procedure?")]
    assert [query.rsplit("_offset=", 1)[1] for query in paging] == ["5", "10", "15"]
    assert HISTORY_QUERY not in observed.queries


def test_paged_prefetch_without_a_fhir_server_says_what_was_not_checked(
        client: FlaskClient, fhir_server: FhirTestServer, observed: Observed) -> None:
    body = load_request("order-sign/server-no-prefetch.json")
    body["prefetch"] = {"priorProcedures": history_first_page(fhir_server), "conditions": None}

    cards = cards_of(call(client, body))

    assert observed.queries == []
    assert observed.status("priorProcedures") is KeyStatus.FAILED
    assert rule_ids(cards) == []
    [info] = unchecked_cards(cards)
    assert "later pages need a FHIR server" in info["summary"] + info["detail"]


# --------------------------------------------------------------------------- FHIR server down or refusing


@dataclass(frozen=True)
class BrokenServer:
    """A FHIR base URL and token with which no query can succeed."""

    kind: str
    base_url: str
    token: str
    problem: str  # how the service names the failure in its 'not checked' card


@pytest.fixture(params=["unreachable", "unauthorized"])
def broken_server(request: pytest.FixtureRequest) -> Iterator[BrokenServer]:
    """A stopped server (connection refused), or the session server with a wrong token (401)."""
    if request.param == "unreachable":
        server: FhirTestServer = request.getfixturevalue("fresh_fhir_server")
        server.load(read_bundle(FHIR_BUNDLE_PATH))
        server.stop()
        with pytest.raises(requests.ConnectionError):
            requests.get(f"{server.base_url}/metadata", timeout=2)
        yield BrokenServer("unreachable", server.base_url, server.token, "unreachable")
    else:
        session_server: FhirTestServer = request.getfixturevalue("fhir_server")
        wrong = "wrong-" + secrets.token_urlsafe(24)
        answer = requests.get(f"{session_server.base_url}/Patient/{PATIENT}", timeout=5,
                              headers={"Authorization": f"Bearer {wrong}", "Accept": "application/fhir+json"})
        assert answer.status_code == 401
        yield BrokenServer("unauthorized", session_server.base_url, wrong, "HTTP 401")


def _assert_no_token(response: TestResponse, broken: BrokenServer, caplog: pytest.LogCaptureFixture) -> None:
    assert broken.token not in response.get_data(as_text=True)
    assert broken.token not in caplog.text


def test_order_sign_degrades_to_an_info_card(client: FlaskClient, broken_server: BrokenServer,
                                             observed: Observed, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    body = against(load_request("order-sign/server-no-prefetch.json"), broken_server.base_url, broken_server.token)

    response = call(client, body)

    cards = cards_of(response)
    assert rule_ids(cards) == [], "the history that would fire DN-CODE-002 could not be read"
    [info] = unchecked_cards(cards)
    assert info["indicator"] == "info"
    assert "could not run" in info["summary"] or info["summary"].startswith("Not checked")
    assert "earlier sessions" in info["detail"]
    assert broken_server.problem in info["detail"]
    assert observed.status("priorProcedures") is KeyStatus.FAILED
    assert HISTORY_QUERY in observed.queries
    _assert_no_token(response, broken_server, caplog)


def test_order_sign_other_rules_still_run(client: FlaskClient, broken_server: BrokenServer,
                                          caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    body = against(load_request("order-sign/code001-20561-two-muscles.json"),
                   broken_server.base_url, broken_server.token)
    del body["prefetch"]

    response = call(client, body)

    cards = cards_of(response)
    assert rule_ids(cards) == ["DN-CODE-001"]
    assert len(unchecked_cards(cards)) == 1
    _assert_no_token(response, broken_server, caplog)


def test_claim_whose_procedure_is_only_on_the_server_is_412(
        client: FlaskClient, broken_server: BrokenServer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    body = against(load_request("claim-create/server-referenced-procedure.json"),
                   broken_server.base_url, broken_server.token)

    response = call(client, body)

    assert response.status_code == 412
    assert response.mimetype == "application/fhir+json"
    outcome = response.get_json()
    assert outcome["resourceType"] == "OperationOutcome"
    [issue] = outcome["issue"]
    assert issue["severity"] == "error"
    assert issue["code"] == "not-found"
    assert issue["expression"] == ["context.claim.procedure"]
    assert BILLED_ON_SERVER in issue["diagnostics"]
    assert broken_server.problem in issue["diagnostics"]
    _assert_no_token(response, broken_server, caplog)


def test_claim_with_contained_procedure_is_checked_without_the_server(
        client: FlaskClient, broken_server: BrokenServer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    body = against(load_request("claim-create/code001-20561-two-muscles.json"),
                   broken_server.base_url, broken_server.token)
    del body["prefetch"]

    response = call(client, body)

    cards = cards_of(response)
    assert rule_ids(cards) == ["DN-CODE-001"]
    [info] = unchecked_cards(cards)
    assert broken_server.problem in info["detail"]
    _assert_no_token(response, broken_server, caplog)


def test_full_prefetch_needs_no_server_at_all(client: FlaskClient, broken_server: BrokenServer,
                                              observed: Observed) -> None:
    body = against(load_request("claim-create/code002-prior-procedure-same-date.json"),
                   broken_server.base_url, broken_server.token)

    cards = cards_of(call(client, body))

    assert observed.queries == []
    assert rule_ids(cards) == ["DN-CODE-002"]
    assert not unchecked_cards(cards)


# ------------------------------------------------------------------ _include honoured or not


def test_included_resources_arrive_whether_or_not_the_server_honours_include(
        client: FlaskClient, fallback_server: AnyFhirServer, observed: Observed) -> None:
    body = against(load_request("order-sign/server-no-prefetch.json"), fallback_server.base_url, fallback_server.token)

    call(client, body)

    # sekmet honours _include; Medplum's repository ignores it, so the payor is read by reference.
    assert "Organization/nc-org-payer" in observed.resource_ids("coverage")
    read_by_reference = "Organization/nc-org-payer" in observed.queries
    assert read_by_reference is isinstance(fallback_server, MedplumTestServer)
