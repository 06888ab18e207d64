"""CORS for browser-based CDS clients: the configured origins only, with preflight for Authorization and
Content-Type, and no CORS headers at all for anyone else."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask.testing import FlaskClient

from needlecheck.cds_hooks.app import create_app
from needlecheck.cds_hooks.settings import Settings
from needlecheck.cds_hooks.trust_settings import TrustedClient
from tests.support.client_tokens import ec_key

EHR = "https://ehr.example.org"
ORDER_SIGN = "/cds-services/dry-needling-order-sign"


def preflight(http: FlaskClient, origin: str, path: str = ORDER_SIGN) -> object:
    return http.options(path, headers={"Origin": origin, "Access-Control-Request-Method": "POST",
                                       "Access-Control-Request-Headers": "authorization, content-type"})


@pytest.fixture
def http(tmp_path: Path) -> FlaskClient:
    """A secured service (a trusted client with inline keys) that allows one browser origin."""
    client = TrustedClient("https://ehr.example.org", keys=(ec_key("k").public_jwk,))
    settings = Settings(data_dir=tmp_path, trusted_clients=(client,), public_base_url="https://cds.example.org",
                        cors_origins=(EHR,))
    return create_app(settings).test_client()


def test_preflight_from_an_allowed_origin_permits_authorization_and_content_type(http: FlaskClient) -> None:
    response = preflight(http, EHR)
    assert response.status_code == 200  # not 401: a preflight carries no credentials
    assert response.headers["Access-Control-Allow-Origin"] == EHR
    allowed = {h.strip().lower() for h in response.headers["Access-Control-Allow-Headers"].split(",")}
    assert {"authorization", "content-type"} <= allowed
    assert "POST" in response.headers["Access-Control-Allow-Methods"]
    assert "Access-Control-Allow-Credentials" not in response.headers


@pytest.mark.parametrize("origin", ["https://evil.example.org", "http://ehr.example.org",
                                    "https://ehr.example.org.evil.example", "null"])
def test_other_origins_get_no_cors_headers(http: FlaskClient, origin: str) -> None:
    for response in (preflight(http, origin), http.get("/cds-services", headers={"Origin": origin}),
                     http.post(ORDER_SIGN, json={}, headers={"Origin": origin})):
        assert not [name for name, _ in response.headers.items() if name.lower().startswith("access-control-")]


def test_an_allowed_origin_can_read_discovery_and_the_401(http: FlaskClient) -> None:
    discovery = http.get("/cds-services", headers={"Origin": EHR})
    assert discovery.headers["Access-Control-Allow-Origin"] == EHR
    refused = http.post(ORDER_SIGN, json={}, headers={"Origin": EHR})
    assert refused.status_code == 401
    assert refused.headers["Access-Control-Allow-Origin"] == EHR


def test_without_configured_origins_there_is_no_cors(tmp_path: Path) -> None:
    http = create_app(Settings(data_dir=tmp_path)).test_client()
    for response in (preflight(http, EHR), http.get("/cds-services", headers={"Origin": EHR})):
        assert "Access-Control-Allow-Origin" not in response.headers
