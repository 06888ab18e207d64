"""The FHIR client against a mocked server (``responses``): tokens, paging, limits and failures."""

from __future__ import annotations

import time

import pytest
import requests
import responses

from needlecheck.cds_hooks.fhir_client import FhirClient, FhirLimits, FhirUnavailable

BASE = "https://ehr.example.org/fhir"


def bundle(*ids: str, next_url: str | None = None) -> dict[str, object]:
    page: dict[str, object] = {"resourceType": "Bundle", "type": "searchset", "entry": [
        {"resource": {"resourceType": "Procedure", "id": i}, "search": {"mode": "match"}} for i in ids]}
    if next_url:
        page["link"] = [{"relation": "next", "url": next_url}]
    return page


def client(**limits: object) -> FhirClient:
    return FhirClient(BASE, "secret-token", FhirLimits(**limits))  # type: ignore[arg-type]


@responses.activate
def test_sends_the_bearer_token_and_asks_for_fhir_json() -> None:
    responses.get(f"{BASE}/Patient/1", json={"resourceType": "Patient", "id": "1"})
    assert client().get("Patient/1")["id"] == "1"
    sent = responses.calls[0].request
    assert sent.headers["Authorization"] == "Bearer secret-token"
    assert sent.headers["Accept"] == "application/fhir+json"


@responses.activate
def test_follows_next_links_to_the_end() -> None:
    responses.get(f"{BASE}/Procedure", json=bundle("a", "b", next_url=f"{BASE}/Procedure?page=2"),
                  match=[responses.matchers.query_param_matcher({"patient": "1"})])
    responses.get(f"{BASE}/Procedure", json=bundle("c"), match=[responses.matchers.query_param_matcher({"page": "2"})])
    found = client().search("Procedure?patient=1")
    assert [r["id"] for r in found] == ["a", "b", "c"]


@responses.activate
def test_search_outcomes_are_not_results() -> None:
    page = bundle("a")
    page["entry"].append({"resource": {"resourceType": "OperationOutcome", "issue": []},  # type: ignore[union-attr]
                          "search": {"mode": "outcome"}})
    responses.get(f"{BASE}/Procedure", json=page)
    assert [r["id"] for r in client().search("Procedure")] == ["a"]


@responses.activate
def test_an_endless_next_chain_stops_at_the_page_cap() -> None:
    responses.get(f"{BASE}/Procedure", json=bundle("a", next_url=f"{BASE}/Procedure"))
    with pytest.raises(FhirUnavailable, match="more than 3 pages"):
        client(max_pages=3).search("Procedure")
    assert len(responses.calls) == 3


@responses.activate
def test_next_links_to_another_host_are_not_followed() -> None:
    responses.get(f"{BASE}/Procedure", json=bundle("a", next_url="https://attacker.example.net/steal"))
    with pytest.raises(FhirUnavailable, match="outside"):
        client().search("Procedure")
    assert len(responses.calls) == 1


@responses.activate
def test_redirects_are_not_followed() -> None:
    responses.get(f"{BASE}/Patient/1", status=302, headers={"Location": "https://elsewhere.example.net/x"})
    with pytest.raises(FhirUnavailable, match="HTTP 302"):
        client().get("Patient/1")
    assert len(responses.calls) == 1


@pytest.mark.parametrize("status", [401, 403, 404, 500])
@responses.activate
def test_error_statuses_are_unavailable_without_the_token(status: int) -> None:
    responses.get(f"{BASE}/Patient/1", status=status, json={"resourceType": "OperationOutcome"})
    with pytest.raises(FhirUnavailable) as raised:
        client().get("Patient/1")
    assert str(status) in str(raised.value) and "secret-token" not in str(raised.value)


@responses.activate
def test_invalid_json_and_non_fhir_answers() -> None:
    responses.get(f"{BASE}/Patient/1", body="<html>oops</html>")
    responses.get(f"{BASE}/Patient/2", json=[1, 2])
    with pytest.raises(FhirUnavailable, match="not JSON"):
        client().get("Patient/1")
    with pytest.raises(FhirUnavailable, match="not a FHIR resource"):
        client().get("Patient/2")


@responses.activate
def test_oversized_answers_are_refused() -> None:
    responses.get(f"{BASE}/Patient/1", body=b"x" * 2000)
    with pytest.raises(FhirUnavailable, match="larger than 1000 bytes"):
        client(max_response_bytes=1000).get("Patient/1")


@responses.activate
def test_connection_errors_and_timeouts() -> None:
    responses.get(f"{BASE}/Patient/1", body=requests.ConnectionError("refused"))
    responses.get(f"{BASE}/Patient/2", body=requests.ReadTimeout("slow"))
    with pytest.raises(FhirUnavailable, match="unreachable"):
        client().get("Patient/1")
    with pytest.raises(FhirUnavailable, match="timed out"):
        client().get("Patient/2")


@responses.activate
def test_nothing_is_sent_once_the_deadline_has_passed() -> None:
    late = FhirClient(BASE, "t", FhirLimits(), deadline=time.monotonic() - 1)
    with pytest.raises(FhirUnavailable, match="time budget"):
        late.get("Patient/1")
    assert len(responses.calls) == 0


@responses.activate
def test_absolute_urls_on_the_same_server_are_allowed() -> None:
    responses.get(f"{BASE}/Patient/1", json={"resourceType": "Patient", "id": "1"})
    assert client().get(f"{BASE}/Patient/1")["id"] == "1"
