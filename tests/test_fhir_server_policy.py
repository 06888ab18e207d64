"""``fhirServer`` cannot steer the service: https only (http only with ``allow_http``, for tests), and for an
authenticated client only the hosts configured for it. A refused server is never contacted."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import responses
from flask.testing import FlaskClient

from needlecheck.cds_hooks.app import create_app
from needlecheck.cds_hooks.settings import Settings
from needlecheck.cds_hooks.trust_settings import TrustedClient
from tests.support.client_tokens import SigningKey, claims, ec_key, mint

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "requests"
BASE = "https://cds.example.org"
ISS = "https://ehr.example.org"
ORDER_SIGN = "/cds-services/dry-needling-order-sign"


@pytest.fixture(scope="module")
def key() -> SigningKey:
    return ec_key("ehr")


@pytest.fixture
def fhir() -> Iterator[responses.RequestsMock]:
    """Every outgoing request is recorded, and answered 404 so that a fetch is visible but harmless."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.add(responses.GET, re.compile(r"https?://.*"), status=404)
        yield mock


def app_for(tmp_path: Path, key: SigningKey, allow_http: bool = False) -> FlaskClient:
    client = TrustedClient(ISS, keys=(key.public_jwk,), fhir_hosts=("fhir.example.org", "fhir2.example.org:8443"))
    settings = Settings(data_dir=tmp_path, trusted_clients=(client,), public_base_url=BASE, allow_http=allow_http)
    return create_app(settings).test_client()


def request_naming(server: str) -> dict[str, Any]:
    """A request without prefetch, so that the service would query ``server`` for the patient's history."""
    body = json.loads((FIXTURES / "order-sign/clean-20560-bilateral-trapezius.json").read_text(encoding="utf-8"))
    body.pop("prefetch", None)
    return body | {"fhirServer": server, "fhirAuthorization": {"access_token": "ehr-secret-token",
                                                               "token_type": "Bearer", "scope": "patient/*.read",
                                                               "expires_in": 300, "subject": "needlecheck"}}


def post(http: FlaskClient, key: SigningKey, body: dict[str, Any]) -> Any:
    token = mint(key, claims(ISS, BASE + ORDER_SIGN))
    return http.post(ORDER_SIGN, json=body, headers={"Authorization": f"Bearer {token}"})


def assert_refused_naming_fhir_server(response: Any) -> None:
    assert response.status_code == 400
    [issue] = response.get_json()["issue"]
    assert issue["expression"] == ["fhirServer"]
    assert "ehr-secret-token" not in response.get_data(as_text=True)


@pytest.mark.parametrize("server", ["https://fhir.example.org/r4", "https://FHIR.example.org:443/r4/",
                                    "https://fhir2.example.org:8443/fhir"])
def test_a_configured_host_is_queried(tmp_path: Path, key: SigningKey, fhir: responses.RequestsMock,
                                      server: str) -> None:
    response = post(app_for(tmp_path, key), key, request_naming(server))
    assert response.status_code == 200
    assert fhir.calls and all(call.request.url.lower().startswith(server.lower().rstrip("/")) for call in fhir.calls)


@pytest.mark.parametrize("server", [
    "https://evil.example.org/r4",
    "https://fhir.example.org.evil.example/r4",
    "https://fhir.example.org@evil.example/r4",
    "https://169.254.169.254/latest/meta-data",
    "https://fhir2.example.org/fhir",          # configured with port 8443 only
    "https://fhir.example.org:99999/r4",
])
def test_another_host_is_refused_and_never_contacted(tmp_path: Path, key: SigningKey,
                                                     fhir: responses.RequestsMock, server: str) -> None:
    assert_refused_naming_fhir_server(post(app_for(tmp_path, key), key, request_naming(server)))
    assert not fhir.calls


def test_http_is_refused_unless_allowed(tmp_path: Path, key: SigningKey, fhir: responses.RequestsMock) -> None:
    body = request_naming("http://fhir.example.org/r4")
    assert_refused_naming_fhir_server(post(app_for(tmp_path / "a", key), key, body))
    assert not fhir.calls
    assert post(app_for(tmp_path / "b", key, allow_http=True), key, body).status_code == 200
    assert fhir.calls


def test_a_client_without_fhir_hosts_may_name_none(tmp_path: Path, key: SigningKey,
                                                   fhir: responses.RequestsMock) -> None:
    settings = Settings(data_dir=tmp_path, trusted_clients=(TrustedClient(ISS, keys=(key.public_jwk,)),),
                        public_base_url=BASE)
    http = create_app(settings).test_client()
    assert_refused_naming_fhir_server(post(http, key, request_naming("https://fhir.example.org/r4")))
    assert not fhir.calls


def test_open_mode_allows_any_https_host_but_not_http(tmp_path: Path, fhir: responses.RequestsMock) -> None:
    http = create_app(Settings(data_dir=tmp_path)).test_client()
    assert http.post(ORDER_SIGN, json=request_naming("https://any.example.net/fhir")).status_code == 200
    assert fhir.calls
    calls = len(fhir.calls)
    assert_refused_naming_fhir_server(http.post(ORDER_SIGN, json=request_naming("http://any.example.net/fhir")))
    assert len(fhir.calls) == calls
