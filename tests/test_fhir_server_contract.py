"""Contract tests for the FHIR search semantics Needlecheck relies on, run against sekmet.

sekmet-fhir is pinned (0.1.1) and young; these tests make an upgrade that changes any of these
behaviours fail here, loudly, instead of as a puzzling service-test failure. They assert on
result *sets* (resource ids), not just on status codes.

The data is a small Bundle defined below, loaded once into a module-scoped server (the tests only
read). Ids are client-assigned (PUT) so expectations can name them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from tests.support.fhir_server import FhirServerError, FhirTestServer

CPT = "http://www.ama-assn.org/go/cpt"
LOCAL = "http://example.org/fhir/CodeSystem/local-procedure-codes"
TIMEOUT = 10
NO_AUTH = {"Accept": "application/fhir+json"}

PATIENT = "123"
OTHER_PATIENT = "other"


def _procedure(rid: str, patient: str, system: str, code: str, **performed: Any) -> dict[str, Any]:
    """A transaction entry that PUTs a completed Procedure with one coding and a performed[x]."""
    return {
        "resource": {
            "resourceType": "Procedure",
            "id": rid,
            "status": "completed",
            "subject": {"reference": f"Patient/{patient}"},
            "code": {"coding": [{"system": system, "code": code}]},
            **performed,
        },
        "request": {"method": "PUT", "url": f"Procedure/{rid}"},
    }


def _coverage(rid: str, patient: str, status: str) -> dict[str, Any]:
    """A transaction entry that PUTs a Coverage for ``patient`` (payor by display only)."""
    return {
        "resource": {
            "resourceType": "Coverage",
            "id": rid,
            "status": status,
            "beneficiary": {"reference": f"Patient/{patient}"},
            "payor": [{"display": "Acme Health Plan"}],
        },
        "request": {"method": "PUT", "url": f"Coverage/{rid}"},
    }


def _patient(rid: str) -> dict[str, Any]:
    """A transaction entry that PUTs a Patient with a client-assigned id."""
    return {
        "resource": {"resourceType": "Patient", "id": rid},
        "request": {"method": "PUT", "url": f"Patient/{rid}"},
    }


CONTRACT_BUNDLE: dict[str, Any] = {
    "resourceType": "Bundle",
    "type": "transaction",
    "entry": [
        _patient(PATIENT),
        _patient(OTHER_PATIENT),
        # Patient 123: dry needling (CPT 20560/20561) on several dates, in both performed[x] shapes.
        _procedure("p1-20560", PATIENT, CPT, "20560", performedDateTime="2025-11-10T10:00:00Z"),
        _procedure("p2-20560", PATIENT, CPT, "20560", performedDateTime="2026-01-15"),  # date only
        _procedure(
            "p3-20561",
            PATIENT,
            CPT,
            "20561",
            performedPeriod={"start": "2026-02-20T09:10:00Z", "end": "2026-02-20T09:40:00Z"},
        ),
        # Same code 20561, different system: must NOT count as CPT 20561.
        _procedure("p4-local-20561", PATIENT, LOCAL, "20561", performedDateTime="2026-02-01T08:00:00Z"),
        # A CPT code the service does not care about.
        _procedure("p5-97110", PATIENT, CPT, "97110", performedDateTime="2026-01-20T08:00:00Z"),
        # Another patient's dry needling: must never leak into patient=123 searches.
        _procedure("q1-20560", OTHER_PATIENT, CPT, "20560", performedDateTime="2026-01-10T08:00:00Z"),
        _coverage("cov-active", PATIENT, "active"),
        _coverage("cov-cancelled", PATIENT, "cancelled"),
        _coverage("cov-other-active", OTHER_PATIENT, "active"),
    ],
}

ALL_PATIENT_PROCEDURES = {"p1-20560", "p2-20560", "p3-20561", "p4-local-20561", "p5-97110"}
CPT_DRY_NEEDLING = {"p1-20560", "p2-20560", "p3-20561"}
# The form Needlecheck must use: the system repeated on every comma-separated value.
CPT_OR_SEARCH = f"{CPT}|20560,{CPT}|20561"
# The pitfall: the second value has no system, so it means "20561 in any system".
CPT_OR_PITFALL = f"{CPT}|20560,20561"


@pytest.fixture(scope="module")
def server() -> Iterator[FhirTestServer]:
    """One server with CONTRACT_BUNDLE for this module (tests only read, so sharing is safe)."""
    with FhirTestServer() as fhir:
        fhir.load(CONTRACT_BUNDLE)
        yield fhir


Params = dict[str, str] | list[tuple[str, str]]


def _get(
    server: FhirTestServer, path: str, params: Params | None = None, headers: dict[str, str] | None = None
) -> requests.Response:
    """GET ``base_url/path`` with the server's token (unless ``headers`` replaces them)."""
    return requests.get(
        f"{server.base_url}/{path}",
        params=params,
        headers=server.auth_headers if headers is None else headers,
        timeout=TIMEOUT,
    )


def _match_ids(bundle: dict[str, Any]) -> set[str]:
    """Ids of the ``search.mode=match`` entries of a searchset (ignores outcome/include entries)."""
    assert bundle["resourceType"] == "Bundle" and bundle["type"] == "searchset", bundle
    return {
        e["resource"]["id"]
        for e in bundle.get("entry", [])
        if e.get("search", {}).get("mode", "match") == "match"
    }


def _search_ids(server: FhirTestServer, rtype: str, params: Params) -> set[str]:
    """Run a search (requests URL-encodes ``|`` and ``,``, as the service's client will) -> match ids."""
    r = _get(server, rtype, params)
    assert r.status_code == 200, r.text
    return _match_ids(r.json())


# --------------------------------------------------------------------------- token search (code=)


def test_cpt_or_search_with_system_on_every_value_matches_only_cpt(server: FhirTestServer) -> None:
    """``code=cpt|20560,cpt|20561`` returns exactly the CPT dry-needling Procedures."""
    assert _search_ids(server, "Procedure", {"patient": PATIENT, "code": CPT_OR_SEARCH}) == CPT_DRY_NEEDLING


def test_cpt_or_search_pitfall_form_also_matches_other_systems(server: FhirTestServer) -> None:
    """``code=cpt|20560,20561`` also matches 20561 in a non-CPT system: the difference is that one."""
    correct = _search_ids(server, "Procedure", {"patient": PATIENT, "code": CPT_OR_SEARCH})
    pitfall = _search_ids(server, "Procedure", {"patient": PATIENT, "code": CPT_OR_PITFALL})
    assert pitfall == CPT_DRY_NEEDLING | {"p4-local-20561"}
    assert pitfall - correct == {"p4-local-20561"}


def test_cpt_or_search_unencoded_url_is_equivalent(server: FhirTestServer) -> None:
    """A raw ``|`` / ``,`` query string gives the same set as the percent-encoded one."""
    r = requests.get(
        f"{server.base_url}/Procedure?patient={PATIENT}&code={CPT_OR_SEARCH}",
        headers=server.auth_headers,
        timeout=TIMEOUT,
    )
    assert r.status_code == 200, r.text
    assert _match_ids(r.json()) == CPT_DRY_NEEDLING


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (f"{CPT}|20561", {"p3-20561"}),
        ("20561", {"p3-20561", "p4-local-20561"}),  # bare code: any system
        (f"{LOCAL}|20561", {"p4-local-20561"}),
        ("http://snomed.info/sct|20560", set()),  # right code, wrong system
    ],
)
def test_single_token_system_semantics(server: FhirTestServer, code: str, expected: set[str]) -> None:
    """``system|code`` restricts to the system; a bare code matches in any system."""
    assert _search_ids(server, "Procedure", {"patient": PATIENT, "code": code}) == expected


# --------------------------------------------------------------------------- reference search (patient=)


@pytest.mark.parametrize(
    "patient_param",
    [("patient", PATIENT), ("patient", f"Patient/{PATIENT}"), ("subject", f"Patient/{PATIENT}")],
)
def test_patient_bare_id_and_typed_reference_match_the_same_set(
    server: FhirTestServer, patient_param: tuple[str, str]
) -> None:
    """``patient=123`` (bare id, what CDS Hooks ``context.patientId`` gives) works like ``Patient/123``."""
    assert _search_ids(server, "Procedure", [patient_param]) == ALL_PATIENT_PROCEDURES


def test_patient_search_excludes_other_patients(server: FhirTestServer) -> None:
    """Another patient's Procedures never appear, and an unknown patient matches nothing."""
    assert _search_ids(server, "Procedure", {"patient": OTHER_PATIENT}) == {"q1-20560"}
    assert _search_ids(server, "Procedure", {"patient": "does-not-exist"}) == set()


# --------------------------------------------------------------------------- date search


@pytest.mark.parametrize(
    ("dates", "expected"),
    [
        (["ge2026-01-01"], {"p2-20560", "p3-20561", "p4-local-20561", "p5-97110"}),
        (["le2025-12-31"], {"p1-20560"}),
        (["ge2026-01-01", "le2026-01-31"], {"p2-20560", "p5-97110"}),  # repeated param = AND
        (["ge2026-02-01"], {"p3-20561", "p4-local-20561"}),  # performedPeriod is searchable
        (["gt2026-01-15"], {"p3-20561", "p4-local-20561", "p5-97110"}),  # date-only value = whole day
        (["lt2026-01-15"], {"p1-20560"}),
        (["ge2026-01-01T00:00:00Z"], {"p2-20560", "p3-20561", "p4-local-20561", "p5-97110"}),
        (["ge2026-02-20T09:30:00Z"], {"p3-20561"}),  # overlaps the end of the period
        (["gt2026-02-20T09:40:00Z"], set()),  # after the period ended
        (["2026-02-20"], {"p3-20561"}),  # eq: the day contains the whole period
    ],
)
def test_date_prefixes(server: FhirTestServer, dates: list[str], expected: set[str]) -> None:
    """``date`` ge/le/gt/lt/eq on performedDateTime (with and without time) and performedPeriod."""
    params = [("patient", PATIENT)] + [("date", d) for d in dates]
    assert _search_ids(server, "Procedure", params) == expected


def test_service_lookback_query(server: FhirTestServer) -> None:
    """The full query shape the service sends: patient + date lower bound + CPT OR-search."""
    params = {"patient": PATIENT, "date": "ge2026-01-01", "code": CPT_OR_SEARCH}
    assert _search_ids(server, "Procedure", params) == {"p2-20560", "p3-20561"}


# --------------------------------------------------------------------------- paging


def test_count_paging_follows_absolute_next_links_to_the_end(server: FhirTestServer) -> None:
    """``_count=2``: every page has <= 2 entries, ``next`` links are absolute URLs on this server,
    and following them to the end yields each matching resource exactly once."""
    r = _get(server, "Procedure", {"patient": PATIENT, "_count": "2"})
    assert r.status_code == 200, r.text
    page = r.json()
    assert page["total"] == len(ALL_PATIENT_PROCEDURES)
    seen: list[str] = []
    pages = 0
    while True:
        pages += 1
        ids = [e["resource"]["id"] for e in page.get("entry", [])]
        assert 0 < len(ids) <= 2
        seen.extend(ids)
        next_urls = [link["url"] for link in page.get("link", []) if link["relation"] == "next"]
        if not next_urls:
            break
        (next_url,) = next_urls
        parts = urlsplit(next_url)
        # Absolute, on 127.0.0.1 and the server's real port (sekmet builds links from base_url).
        assert (parts.scheme, parts.hostname, parts.port) == ("http", "127.0.0.1", server.port)
        assert next_url.startswith(f"{server.base_url}/Procedure?")
        assert pages < 10, "paging did not terminate"
        r = requests.get(next_url, headers=server.auth_headers, timeout=TIMEOUT)
        assert r.status_code == 200, r.text
        page = r.json()
    assert pages == 3
    assert len(seen) == len(set(seen)), f"duplicates across pages: {seen}"
    assert set(seen) == ALL_PATIENT_PROCEDURES


def test_next_links_keep_the_search_filters(server: FhirTestServer) -> None:
    """Paging through the CPT OR-search keeps its filters (the pitfall-free code value survives encoding)."""
    page = _get(server, "Procedure", {"patient": PATIENT, "code": CPT_OR_SEARCH, "_count": "1"}).json()
    seen: set[str] = _match_ids(page)
    while nxt := [link["url"] for link in page["link"] if link["relation"] == "next"]:
        page = requests.get(nxt[0], headers=server.auth_headers, timeout=TIMEOUT).json()
        seen |= _match_ids(page)
    assert seen == CPT_DRY_NEEDLING


def test_default_page_size_is_20(server: FhirTestServer) -> None:
    """Without ``_count`` sekmet pages at 20: a client that ignores ``next`` silently loses data."""
    page = _get(server, "Procedure", {"patient": PATIENT}).json()
    self_url = next(link["url"] for link in page["link"] if link["relation"] == "self")
    assert "_count=20" in self_url


# --------------------------------------------------------------------------- Coverage


@pytest.mark.parametrize(
    ("status", "expected"),
    [("active", {"cov-active"}), ("cancelled", {"cov-cancelled"}), ("draft", set())],
)
def test_coverage_by_patient_and_status(server: FhirTestServer, status: str, expected: set[str]) -> None:
    """``Coverage?patient=..&status=..`` filters on both (patient maps to beneficiary)."""
    assert _search_ids(server, "Coverage", {"patient": PATIENT, "status": status}) == expected


# --------------------------------------------------------------------------- read


def test_read_existing_resource(server: FhirTestServer) -> None:
    """A read returns the resource with the client-assigned id."""
    r = _get(server, "Procedure/p3-20561")
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["resourceType"], body["id"]) == ("Procedure", "p3-20561")


def test_read_missing_resource_is_404_operation_outcome(server: FhirTestServer) -> None:
    """A read of an unknown id is 404 with an OperationOutcome (not an HTML/JSON error page)."""
    r = _get(server, "Procedure/does-not-exist")
    assert r.status_code == 404
    assert r.headers["Content-Type"].startswith("application/fhir+json")
    body = r.json()
    assert body["resourceType"] == "OperationOutcome"
    assert [i["code"] for i in body["issue"]] == ["not-found"]


# --------------------------------------------------------------------------- auth


@pytest.mark.parametrize("path", ["Procedure", f"Procedure?patient={PATIENT}", "Procedure/p1-20560"])
def test_no_token_is_401(server: FhirTestServer, path: str) -> None:
    """Without ``Authorization`` every search/read is 401 with a Bearer challenge and no data."""
    r = requests.get(f"{server.base_url}/{path}", headers=NO_AUTH, timeout=TIMEOUT)
    assert r.status_code == 401
    assert r.headers["WWW-Authenticate"].startswith("Bearer")
    assert r.json()["resourceType"] == "OperationOutcome"


@pytest.mark.parametrize("path", ["Procedure", f"Procedure?patient={PATIENT}", "Procedure/p1-20560"])
def test_wrong_token_is_401(server: FhirTestServer, path: str) -> None:
    """A wrong bearer token is 401 with an OperationOutcome and no data."""
    r = requests.get(
        f"{server.base_url}/{path}",
        headers={"Authorization": f"Bearer not-{server.token}", "Accept": "application/fhir+json"},
        timeout=TIMEOUT,
    )
    assert r.status_code == 401
    assert r.json()["resourceType"] == "OperationOutcome"


def test_metadata_needs_no_token(server: FhirTestServer) -> None:
    """``/metadata`` is public (FhirTestServer's readiness probe relies on it)."""
    r = requests.get(f"{server.base_url}/metadata", headers=NO_AUTH, timeout=TIMEOUT)
    assert r.status_code == 200
    assert r.json()["resourceType"] == "CapabilityStatement"


# --------------------------------------------------------------------------- the harness itself


def test_each_server_has_its_own_empty_database(server: FhirTestServer) -> None:
    """A second server in the same process starts empty and does not see the module server's data."""
    with FhirTestServer() as other:
        assert other.port != server.port
        assert _search_ids(other, "Procedure", {}) == set()
    assert _search_ids(server, "Procedure", {"patient": PATIENT}) == ALL_PATIENT_PROCEDURES


def test_stopped_server_refuses_connections() -> None:
    """After ``stop()`` the base URL refuses connections, also on a kept-alive session."""
    fhir = FhirTestServer().start()
    session = requests.Session()
    assert session.get(f"{fhir.base_url}/metadata", timeout=TIMEOUT).status_code == 200
    fhir.stop()
    assert not fhir.is_running
    for client in (requests, session):
        with pytest.raises(requests.ConnectionError):
            client.get(f"{fhir.base_url}/Patient/{PATIENT}", headers=fhir.auth_headers, timeout=TIMEOUT)
    fhir.stop()  # idempotent


def test_load_reports_the_operation_outcome() -> None:
    """``load`` raises with the server's validation message when the transaction is rejected."""
    bad = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "resource": {"resourceType": "Procedure", "subject": {"reference": "Patient/x"}},
                "request": {"method": "POST", "url": "Procedure"},
            }
        ],  # missing required status
    }
    with FhirTestServer() as fhir, pytest.raises(FhirServerError, match=r"Procedure\.status"):
        fhir.load(bad)
