"""Prefetch semantics per key: provided, null, OperationOutcome or absent (fetched), and failures."""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import parse_qs, urlsplit

import pytest
import responses

from needlecheck.cds_hooks import fhir_pool
from needlecheck.cds_hooks.fhir_client import FhirClient, FhirLimits
from needlecheck.cds_hooks.prefetch import KeyStatus, render_template, resolve_prefetch, token_values
from needlecheck.cds_hooks.services import ORDER_SIGN

BASE = "https://ehr.example.org/fhir"
CONTEXT = {"userId": "Practitioner/u1", "patientId": "p1", "draftOrders": {}}
OUTCOME = {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "timeout"}]}
HISTORY = {"resourceType": "Bundle", "type": "searchset",
           "entry": [{"resource": {"resourceType": "Procedure", "id": "old"}}]}


@pytest.fixture(autouse=True)
def no_batches() -> Iterator[None]:
    """The server takes no batches (so no test reads its CapabilityStatement first), unless a test says so."""
    fhir_pool.remember_batch_support(f"{BASE}/", False)
    yield
    fhir_pool.remember_batch_support(f"{BASE}/", False)


@pytest.fixture
def pool() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(4) as executor:
        yield executor


def resolve(prefetch: dict[str, object], pool: ThreadPoolExecutor, server: bool = True):  # type: ignore[no-untyped-def]
    client = FhirClient(BASE, "t", FhirLimits()) if server else None
    return resolve_prefetch(ORDER_SIGN.prefetch, prefetch, CONTEXT, client, pool)


def nulls_except(**given: object) -> dict[str, object]:
    """A prefetch where every key a rule reads is null except the ones ``given``."""
    return {key.name: None for key in ORDER_SIGN.prefetch if key.checks} | given


def test_tokens_and_templates() -> None:
    values = token_values(CONTEXT)
    assert values["userPractitionerId"] == "u1"
    assert render_template("Patient/{{context.patientId}}", values) == "Patient/p1"
    assert render_template("Encounter/{{context.encounterId}}", values) is None


@responses.activate
def test_provided_and_null_values_are_used_without_fetching(pool: ThreadPoolExecutor) -> None:
    outcomes = resolve(nulls_except(priorProcedures=HISTORY), pool)
    assert outcomes["priorProcedures"].status is KeyStatus.PROVIDED
    assert [r["id"] for r in outcomes["priorProcedures"].resources] == ["old"]
    assert outcomes["conditions"].status is KeyStatus.NULL
    assert len(responses.calls) == 0


@pytest.mark.parametrize("value", [1.5, 7, "entries", {"resource": {"resourceType": "Procedure"}}])
@responses.activate
def test_a_prefetch_bundle_whose_entry_or_link_is_not_a_list_holds_nothing(pool: ThreadPoolExecutor,
                                                                          value: object) -> None:
    # A client's Bundle may hold anything there (found by the hostile-input test as a 500).
    outcomes = resolve(nulls_except(priorProcedures={"resourceType": "Bundle", "entry": value, "link": value}), pool)
    assert outcomes["priorProcedures"].status is KeyStatus.PROVIDED
    assert outcomes["priorProcedures"].resources == []
    assert len(responses.calls) == 0


@responses.activate
def test_absent_and_operation_outcome_values_are_fetched(pool: ThreadPoolExecutor) -> None:
    responses.get(f"{BASE}/Procedure", json=HISTORY)
    responses.get(f"{BASE}/Condition", json={"resourceType": "Bundle", "type": "searchset"})
    outcomes = resolve(nulls_except(priorProcedures=OUTCOME, conditions=OUTCOME), pool)
    assert outcomes["priorProcedures"].status is KeyStatus.FETCHED
    assert outcomes["conditions"].status is KeyStatus.FETCHED
    urls = sorted(call.request.url for call in responses.calls)
    assert len(urls) == 2
    assert "patient=p1" in urls[0] and "Condition" in urls[0]
    codes = parse_qs(urlsplit(urls[1]).query)["code"][0].split(",")
    assert "http://www.ama-assn.org/go/cpt|20561" in codes


@responses.activate
def test_keys_no_rule_reads_are_not_fetched(pool: ThreadPoolExecutor) -> None:
    outcomes = resolve(nulls_except(), pool)
    assert outcomes["patient"].status is KeyStatus.NOT_APPLICABLE
    assert len(responses.calls) == 0


@responses.activate
def test_coverage_is_fetched_with_its_payor(pool: ThreadPoolExecutor) -> None:
    responses.get(f"{BASE}/Coverage", json={"resourceType": "Bundle", "type": "searchset", "entry": [
        {"resource": {"resourceType": "Coverage", "id": "c"}, "search": {"mode": "match"}},
        {"resource": {"resourceType": "Organization", "id": "o"}, "search": {"mode": "include"}}]})
    outcomes = resolve(nulls_except(coverage=OUTCOME), pool)
    assert outcomes["coverage"].status is KeyStatus.FETCHED
    assert [r["resourceType"] for r in outcomes["coverage"].resources] == ["Coverage", "Organization"]
    assert "_include=Coverage%3Apayor" in responses.calls[0].request.url or \
        "_include=Coverage:payor" in responses.calls[0].request.url


def test_without_a_fhir_server_missing_keys_fail(pool: ThreadPoolExecutor) -> None:
    outcomes = resolve({}, pool, server=False)
    assert outcomes["priorProcedures"].status is KeyStatus.FAILED
    assert "no FHIR server" in (outcomes["priorProcedures"].problem or "")


@responses.activate
def test_a_paged_prefetch_bundle_is_followed(pool: ThreadPoolExecutor) -> None:
    first = dict(HISTORY, link=[{"relation": "next", "url": f"{BASE}/Procedure?page=2"}])
    responses.get(f"{BASE}/Procedure", json={"resourceType": "Bundle", "type": "searchset",
                                             "entry": [{"resource": {"resourceType": "Procedure", "id": "older"}}]})
    outcomes = resolve(nulls_except(priorProcedures=first), pool)
    assert [r["id"] for r in outcomes["priorProcedures"].resources] == ["old", "older"]


@responses.activate
def test_a_failed_fetch_is_reported_with_its_reason(pool: ThreadPoolExecutor) -> None:
    responses.get(f"{BASE}/Procedure", status=503)
    outcomes = resolve(nulls_except(priorProcedures=OUTCOME), pool)
    assert outcomes["priorProcedures"].status is KeyStatus.FAILED
    assert outcomes["priorProcedures"].problem == "HTTP 503"


def _batch_answer(*resources: dict[str, object]) -> dict[str, object]:
    return {"resourceType": "Bundle", "type": "batch-response",
            "entry": [{"response": {"status": "200 OK"}, "resource": resource} for resource in resources]}


@responses.activate
def test_a_server_that_takes_batches_gets_the_keys_in_one_batch(pool: ThreadPoolExecutor) -> None:
    fhir_pool.remember_batch_support(f"{BASE}/", True)
    conditions = {"resourceType": "Bundle", "type": "searchset",
                  "entry": [{"resource": {"resourceType": "Condition", "id": "c1"}}]}
    responses.post(f"{BASE}/", json=_batch_answer(conditions, HISTORY))  # in the order of the keys
    outcomes = resolve(nulls_except(priorProcedures=OUTCOME, conditions=OUTCOME), pool)
    [call] = responses.calls
    sent = json.loads(call.request.body)
    assert sent["type"] == "batch"
    assert [e["request"]["method"] for e in sent["entry"]] == ["GET", "GET"]
    assert sent["entry"][0]["request"]["url"] == "Condition?patient=p1"
    assert [r["id"] for r in outcomes["priorProcedures"].resources] == ["old"]
    assert [r["id"] for r in outcomes["conditions"].resources] == ["c1"]


@responses.activate
def test_a_failed_entry_of_a_batch_fails_its_key_only(pool: ThreadPoolExecutor) -> None:
    fhir_pool.remember_batch_support(f"{BASE}/", True)
    answer = _batch_answer({"resourceType": "OperationOutcome", "issue": []}, HISTORY)
    answer["entry"][0]["response"]["status"] = "403 Forbidden"  # type: ignore[index]
    responses.post(f"{BASE}/", json=answer)
    outcomes = resolve(nulls_except(priorProcedures=OUTCOME, conditions=OUTCOME), pool)
    assert outcomes["priorProcedures"].status is KeyStatus.FETCHED
    assert outcomes["conditions"].status is KeyStatus.FAILED and outcomes["conditions"].problem == "HTTP 403"


@responses.activate
def test_a_refused_batch_is_sent_one_query_at_a_time_and_not_again(pool: ThreadPoolExecutor) -> None:
    fhir_pool.remember_batch_support(f"{BASE}/", True)
    responses.post(f"{BASE}/", status=405, json=OUTCOME)
    responses.get(f"{BASE}/Procedure", json=HISTORY)
    responses.get(f"{BASE}/Condition", json={"resourceType": "Bundle", "type": "searchset"})
    outcomes = resolve(nulls_except(priorProcedures=OUTCOME, conditions=OUTCOME), pool)
    assert outcomes["priorProcedures"].status is KeyStatus.FETCHED
    assert outcomes["conditions"].status is KeyStatus.FETCHED
    assert [call.request.method for call in responses.calls] == ["POST", "GET", "GET"]
    assert fhir_pool.batch_support(f"{BASE}/") is False


@responses.activate
def test_an_unknown_server_is_asked_whether_it_takes_batches(pool: ThreadPoolExecutor) -> None:
    fhir_pool.forget_batch_support(f"{BASE}/")
    responses.get(f"{BASE}/metadata", json={"resourceType": "CapabilityStatement", "rest": [
        {"mode": "server", "interaction": [{"code": "transaction"}, {"code": "batch"}]}]})
    responses.get(f"{BASE}/Procedure", json=HISTORY)
    responses.get(f"{BASE}/Condition", json={"resourceType": "Bundle", "type": "searchset"})
    resolve(nulls_except(priorProcedures=OUTCOME, conditions=OUTCOME), pool)
    pool.shutdown(wait=True)  # the CapabilityStatement read is not waited for by the call
    assert fhir_pool.batch_support(f"{BASE}/") is True
    assert sorted(urlsplit(call.request.url).path for call in responses.calls) == [
        "/fhir/Condition", "/fhir/Procedure", "/fhir/metadata"]


@responses.activate
def test_a_batch_refused_for_its_token_does_not_stop_batches(pool: ThreadPoolExecutor) -> None:
    fhir_pool.remember_batch_support(f"{BASE}/", True)
    responses.post(f"{BASE}/", status=401, json=OUTCOME)
    responses.get(f"{BASE}/Procedure", status=401, json=OUTCOME)
    responses.get(f"{BASE}/Condition", status=401, json=OUTCOME)
    outcomes = resolve(nulls_except(priorProcedures=OUTCOME, conditions=OUTCOME), pool)
    assert outcomes["conditions"].status is KeyStatus.FAILED and outcomes["conditions"].problem == "HTTP 401"
    assert fhir_pool.batch_support(f"{BASE}/") is True
