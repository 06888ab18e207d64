"""Trusting CDS clients: every check on a client JWT, each shown to be the one that refuses its bad token.

The client's keys are generated here; its JWK Set is served by a real HTTP server on loopback. Every refusal
is a 401 with the same opaque body; which check refused is asserted through the log (which must never hold
the token).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from flask import Flask
from flask.testing import FlaskClient

from needlecheck.cds_hooks.app import create_app
from needlecheck.cds_hooks.client_auth import ClientAuthenticator
from needlecheck.cds_hooks.replay_cache import SqliteReplayCache
from needlecheck.cds_hooks.settings import Settings
from needlecheck.cds_hooks.trust_settings import AuthLimits, TrustedClient
from tests.support.client_tokens import JwksServer, SigningKey, claims, ec_key, jwks, mint, rsa_key, serve_jwks

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "requests"
BASE = "https://cds.example.org"
ISS = "https://ehr.example.org"
ORDER_SIGN = "/cds-services/dry-needling-order-sign"
FEEDBACK = ORDER_SIGN + "/feedback"
AUD = BASE + ORDER_SIGN
PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")


@pytest.fixture(autouse=True)
def no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """JWK Sets are fetched from loopback, never through a proxy."""
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def es_key() -> SigningKey:
    return ec_key("ehr-es384")


@pytest.fixture(scope="module")
def rs_key() -> SigningKey:
    return rsa_key("ehr-rsa")


@pytest.fixture
def jwks_server(es_key: SigningKey, rs_key: SigningKey) -> Iterator[JwksServer]:
    with serve_jwks(jwks(es_key, rs_key)) as server:
        yield server


@pytest.fixture
def other_server() -> Iterator[JwksServer]:
    """A second key server the client is allow-listed for as a ``jku``; it serves a key of its own."""
    with serve_jwks(jwks(ec_key("jku-key"))) as server:
        yield server


def client_of(jwks_server: JwksServer, **changes: Any) -> TrustedClient:
    return replace(TrustedClient(ISS, jwks_url=jwks_server.url(), fhir_hosts=("fhir.example.org",)), **changes)


def settings_for(data_dir: Path, *clients: TrustedClient) -> Settings:
    return Settings(data_dir=data_dir, trusted_clients=clients, public_base_url=BASE, allow_http=True)


@pytest.fixture
def secured(tmp_path: Path, jwks_server: JwksServer) -> Iterator[Flask]:
    application = create_app(settings_for(tmp_path / "data", client_of(jwks_server)))
    yield application
    application.extensions["needlecheck.pool"].shutdown(wait=False)


@pytest.fixture
def http(secured: Flask) -> FlaskClient:
    return secured.test_client()


def order_sign_body() -> dict[str, Any]:
    return json.loads((FIXTURES / "order-sign/clean-20560-bilateral-trapezius.json").read_text(encoding="utf-8"))


def call(http: FlaskClient, token: str | None, path: str = ORDER_SIGN, body: Any = None,
         **headers: str) -> Any:
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return http.post(path, json=order_sign_body() if body is None else body, headers=headers)


def assert_refused(response: Any) -> None:
    """401, ``WWW-Authenticate: Bearer`` and an OperationOutcome that says nothing about why."""
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert response.get_json() == {"resourceType": "OperationOutcome", "issue": [
        {"severity": "error", "code": "login", "diagnostics": "authentication failed"}]}


def refusal_reasons(caplog: pytest.LogCaptureFixture) -> str:
    return "\n".join(r.getMessage() for r in caplog.records if r.name == "needlecheck.auth")


# ---------------------------------------------------------------------------------------------- accepted


@pytest.mark.parametrize(("key_name", "algorithm"), [
    ("es", "ES384"), ("rs", "RS384"), ("rs", "RS256"), ("rs", "PS256"), ("rs", "RS512")])
def test_a_valid_token_is_accepted(http: FlaskClient, es_key: SigningKey, rs_key: SigningKey, key_name: str,
                                   algorithm: str) -> None:
    key = es_key if key_name == "es" else rs_key
    response = call(http, mint(key, claims(ISS, AUD), algorithm))
    assert response.status_code == 200
    assert "cards" in response.get_json()


def test_every_ec_curve_verifies_its_own_algorithm(tmp_path: Path) -> None:
    keys = {alg: ec_key(f"k-{alg}", curve) for alg, curve in (("ES256", "P-256"), ("ES512", "P-521"))}
    client = TrustedClient(ISS, keys=tuple(key.public_jwk for key in keys.values()))
    application = create_app(settings_for(tmp_path, client))
    for algorithm, key in keys.items():
        assert call(application.test_client(), mint(key, claims(ISS, AUD), algorithm)).status_code == 200


def test_an_audience_list_holding_the_url_is_accepted(http: FlaskClient, es_key: SigningKey) -> None:
    assert call(http, mint(es_key, claims(ISS, [AUD, "https://other.example.org"]))).status_code == 200


def test_a_little_clock_skew_is_tolerated(http: FlaskClient, es_key: SigningKey) -> None:
    # Expired 30 s ago, or issued 30 s in the future: within the 60 s leeway.
    assert call(http, mint(es_key, claims(ISS, AUD, age=330))).status_code == 200
    assert call(http, mint(es_key, claims(ISS, AUD, age=-30))).status_code == 200


def test_discovery_and_health_need_no_token(http: FlaskClient) -> None:
    assert http.get("/cds-services").status_code == 200
    assert http.get("/healthz").status_code == 200


def test_feedback_needs_a_token_whose_aud_is_the_feedback_url(http: FlaskClient, es_key: SigningKey,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    body = {"feedback": [{"card": "c1", "outcome": "overridden", "outcomeTimestamp": "2026-03-02T10:00:00Z",
                          "overrideReason": {"userComment": "documented elsewhere"}}]}
    assert_refused(call(http, None, FEEDBACK, body))
    assert_refused(call(http, mint(es_key, claims(ISS, AUD)), FEEDBACK, body))
    assert "aud is not the URL invoked" in refusal_reasons(caplog)
    response = call(http, mint(es_key, claims(ISS, BASE + FEEDBACK)), FEEDBACK, body)
    assert response.status_code == 200 and response.get_json()["received"] == 1


def test_an_allowed_tenant_is_accepted_and_others_refused(tmp_path: Path, jwks_server: JwksServer,
                                                          es_key: SigningKey,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    application = create_app(settings_for(tmp_path, client_of(jwks_server, tenants=("hospital-a",))))
    http = application.test_client()
    assert call(http, mint(es_key, claims(ISS, AUD, tenant="hospital-a"))).status_code == 200
    assert_refused(call(http, mint(es_key, claims(ISS, AUD, tenant="hospital-b"))))
    assert_refused(call(http, mint(es_key, claims(ISS, AUD))))
    assert refusal_reasons(caplog).count("is not allowed for") == 2


def test_inline_keys_verify_without_any_fetch(tmp_path: Path, es_key: SigningKey,
                                              jwks_server: JwksServer) -> None:
    application = create_app(settings_for(tmp_path, TrustedClient(ISS, keys=(es_key.public_jwk,))))
    assert call(application.test_client(), mint(es_key, claims(ISS, AUD))).status_code == 200
    assert jwks_server.total_hits == 0


# ---------------------------------------------------------------------------------------------- refused


def _hs256_with_the_public_key(key: SigningKey) -> str:
    """The algorithm-confusion attack: an HMAC token whose secret is the RSA public key's PEM."""
    def part(value: dict[str, Any] | bytes) -> str:
        raw = value if isinstance(value, bytes) else json.dumps(value).encode()
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    secret = key.private_key.public_key().public_bytes(serialization.Encoding.PEM,
                                                       serialization.PublicFormat.SubjectPublicKeyInfo)
    signing_input = f"{part({'alg': 'HS256', 'typ': 'JWT', 'kid': key.kid})}.{part(claims(ISS, AUD))}"
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{part(signature)}"


def _unsigned(key: SigningKey) -> str:
    import jwt

    return jwt.encode(claims(ISS, AUD), None, algorithm="none", headers={"kid": key.kid, "typ": "JWT"})


def _signed_by_an_impostor(key: SigningKey) -> str:
    """Right kid, right claims, but signed by another key."""
    return mint(ec_key(key.kid), claims(ISS, AUD))


BAD_TOKENS: dict[str, tuple[Any, str]] = {
    "bad signature": (lambda es, rs: _signed_by_an_impostor(es), "signature does not verify"),
    "tampered payload": (lambda es, rs: _tamper(mint(es, claims(ISS, AUD))), "signature does not verify"),
    "alg none": (lambda es, rs: _unsigned(es), "alg 'none' is not an allowed"),
    "HS256 with the public key as secret": (lambda es, rs: _hs256_with_the_public_key(rs),
                                            "alg 'HS256' is not an allowed"),
    "missing kid": (lambda es, rs: mint(es, claims(ISS, AUD), kid=None), "kid is missing"),
    "unknown kid": (lambda es, rs: mint(ec_key("nobody"), claims(ISS, AUD)), "kid 'nobody' is not a key"),
    "missing typ": (lambda es, rs: mint(es, claims(ISS, AUD), typ=None), "typ is None"),
    "wrong typ": (lambda es, rs: mint(es, claims(ISS, AUD), typ="at+jwt"), "typ is 'at+jwt'"),
    "unknown iss": (lambda es, rs: mint(es, claims("https://evil.example.org", AUD)), "is not a trusted client"),
    "missing iss": (lambda es, rs: mint(es, {k: v for k, v in claims(ISS, AUD).items() if k != "iss"}),
                    "iss None is not a trusted client"),
    "wrong aud": (lambda es, rs: mint(es, claims(ISS, BASE + "/cds-services/dry-needling-claim-create")),
                  "aud is not the URL invoked"),
    "aud on another host": (lambda es, rs: mint(es, claims(ISS, "https://evil.example.org" + ORDER_SIGN)),
                            "aud is not the URL invoked"),
    "missing aud": (lambda es, rs: mint(es, {k: v for k, v in claims(ISS, AUD).items() if k != "aud"}),
                    "a required claim"),
    "expired": (lambda es, rs: mint(es, claims(ISS, AUD, age=200, lifetime=110)), "token expired"),
    "iat in the future": (lambda es, rs: mint(es, claims(ISS, AUD, age=-120)), "not yet valid"),
    "too old": (lambda es, rs: mint(es, claims(ISS, AUD, age=400, lifetime=3600)), "s old, more than 300 s"),
    "missing jti": (lambda es, rs: mint(es, {k: v for k, v in claims(ISS, AUD).items() if k != "jti"}),
                    "a required claim"),
    "missing exp": (lambda es, rs: mint(es, {k: v for k, v in claims(ISS, AUD).items() if k != "exp"}),
                    "a required claim"),
    "jti not a string": (lambda es, rs: mint(es, claims(ISS, AUD) | {"jti": 42}), "jti is not a string"),
    "jti too long": (lambda es, rs: mint(es, claims(ISS, AUD) | {"jti": "j" * 300}), "jti of"),
    "RSA key named by an ES256 token": (lambda es, rs: _es256_claiming(rs), "cannot verify ES256"),
}


def _tamper(token: str) -> str:
    header, payload, signature = token.split(".")
    claims_ = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims_["aud"] = [AUD, "x"]
    forged = base64.urlsafe_b64encode(json.dumps(claims_).encode()).rstrip(b"=").decode()
    return f"{header}.{forged}.{signature}"


def _es256_claiming(rsa: SigningKey) -> str:
    """An ES256 token whose kid names the client's RSA key."""
    return mint(ec_key(rsa.kid, "P-256"), claims(ISS, AUD), "ES256")


@pytest.mark.parametrize("case", sorted(BAD_TOKENS))
def test_a_bad_token_is_refused_by_its_check(case: str, http: FlaskClient, es_key: SigningKey,
                                             rs_key: SigningKey, caplog: pytest.LogCaptureFixture) -> None:
    make, reason = BAD_TOKENS[case]
    caplog.set_level(logging.DEBUG)
    token = make(es_key, rs_key)
    assert_refused(call(http, token))
    assert reason in refusal_reasons(caplog)
    assert_no_part_of(token, caplog)


@pytest.mark.parametrize("authorization", ["", "Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "Bearer a.b.c",
                                           "Bearer " + "x" * 9000, "Bearer not-a-jwt"])
def test_missing_or_malformed_authorization_is_refused(http: FlaskClient, authorization: str) -> None:
    response = http.post(ORDER_SIGN, json=order_sign_body(), headers={"Authorization": authorization})
    assert_refused(response)


def test_no_token_at_all_is_refused_before_the_body_is_read(http: FlaskClient) -> None:
    assert_refused(http.post(ORDER_SIGN, data=b"{not json", content_type="application/json"))


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")  # minting it, in the test
def test_a_short_rsa_key_is_refused(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    weak = rsa_key("weak", bits=1024)
    application = create_app(settings_for(tmp_path, TrustedClient(ISS, keys=(weak.public_jwk,))))
    assert_refused(call(application.test_client(), mint(weak, claims(ISS, AUD), "RS256")))
    assert "unusable" in refusal_reasons(caplog)


def test_a_key_stating_its_alg_verifies_only_that_alg(tmp_path: Path, rs_key: SigningKey,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    client = TrustedClient(ISS, keys=({**rs_key.public_jwk, "alg": "RS384"},))
    http = create_app(settings_for(tmp_path, client)).test_client()
    assert call(http, mint(rs_key, claims(ISS, AUD), "RS384")).status_code == 200
    assert_refused(call(http, mint(rs_key, claims(ISS, AUD), "RS256")))
    assert "cannot verify RS256" in refusal_reasons(caplog)


# ----------------------------------------------------------------------------------------- aud and Host


def test_the_host_header_does_not_make_the_audience(http: FlaskClient, es_key: SigningKey,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    # A token minted for the attacker's own host, replayed against us with that Host header.
    for audience, host in (("https://evil.example.org" + ORDER_SIGN, "evil.example.org"),
                           ("http://localhost" + ORDER_SIGN, "localhost")):
        token = mint(es_key, claims(ISS, audience))
        response = http.post(ORDER_SIGN, json=order_sign_body(), base_url=f"https://{host}",
                             headers={"Authorization": f"Bearer {token}", "X-Forwarded-Host": host})
        assert_refused(response)
    assert refusal_reasons(caplog).count("aud is not the URL invoked") == 2
    # And the configured URL is accepted whatever Host the proxy passes on.
    response = http.post(ORDER_SIGN, json=order_sign_body(), base_url="http://10.0.0.7:8080",
                         headers={"Authorization": f"Bearer {mint(es_key, claims(ISS, AUD))}"})
    assert response.status_code == 200


# ----------------------------------------------------------------------------------------------- replay


def test_a_replayed_token_is_refused(http: FlaskClient, es_key: SigningKey,
                                     caplog: pytest.LogCaptureFixture) -> None:
    token = mint(es_key, claims(ISS, AUD))
    assert call(http, token).status_code == 200
    assert_refused(call(http, token))
    assert "was used before (replay)" in refusal_reasons(caplog)


def test_a_token_is_refused_when_replayed_to_another_instance_sharing_the_data_dir(
        tmp_path: Path, jwks_server: JwksServer, es_key: SigningKey) -> None:
    settings = settings_for(tmp_path / "shared", client_of(jwks_server))
    first, second = create_app(settings), create_app(settings)
    token = mint(es_key, claims(ISS, AUD))
    assert call(first.test_client(), token).status_code == 200
    assert_refused(call(second.test_client(), token))


def test_a_token_refused_for_another_reason_does_not_burn_its_jti(http: FlaskClient, es_key: SigningKey) -> None:
    payload = claims(ISS, AUD)
    assert_refused(call(http, mint(es_key, payload), FEEDBACK, {"feedback": []}))  # aud is the service URL
    assert call(http, mint(es_key, payload)).status_code == 200


# ------------------------------------------------------------------------------------------------- jku


def test_a_jku_that_is_not_allow_listed_is_never_fetched(http: FlaskClient, other_server: JwksServer,
                                                         es_key: SigningKey,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    token = mint(es_key, claims(ISS, AUD), jku=other_server.url("/attacker/jwks.json"))
    assert_refused(call(http, token))
    assert "is not allow-listed" in refusal_reasons(caplog)
    assert other_server.total_hits == 0


def test_an_allow_listed_jku_is_fetched_and_its_keys_used(tmp_path: Path, jwks_server: JwksServer,
                                                          other_server: JwksServer) -> None:
    jku = other_server.url("/jwks.json")
    application = create_app(settings_for(tmp_path, client_of(jwks_server, jku=(jku,))))
    jku_key = other_server.document["keys"][0]["kid"]
    # Only the jku's own key set verifies a token naming it.
    private = ec_key(jku_key)
    other_server.document = jwks(private)
    token = mint(private, claims(ISS, AUD), jku=jku)
    assert call(application.test_client(), token).status_code == 200
    assert other_server.hits["/jwks.json"] == 1
    assert jwks_server.total_hits == 0


def test_a_key_of_the_jwks_url_does_not_verify_a_token_naming_a_jku(
        tmp_path: Path, jwks_server: JwksServer, other_server: JwksServer, es_key: SigningKey,
        caplog: pytest.LogCaptureFixture) -> None:
    jku = other_server.url("/jwks.json")
    application = create_app(settings_for(tmp_path, client_of(jwks_server, jku=(jku,))))
    assert_refused(call(application.test_client(), mint(es_key, claims(ISS, AUD), jku=jku)))
    assert "is not a key of" in refusal_reasons(caplog)


# ------------------------------------------------------------------------------------------ key refresh


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_an_unknown_kid_refreshes_the_key_set_at_most_once_a_minute(
        secured: Flask, jwks_server: JwksServer, es_key: SigningKey, tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    settings: Settings = secured.config["NEEDLECHECK_SETTINGS"]
    secured.extensions["needlecheck.client_auth"] = ClientAuthenticator(
        settings.trusted_clients, AuthLimits(jwks_min_refresh_seconds=60, jwks_cache_seconds=300),
        SqliteReplayCache(tmp_path / "replay.sqlite3"), clock=clock)
    http = secured.test_client()
    assert call(http, mint(es_key, claims(ISS, AUD))).status_code == 200
    assert jwks_server.total_hits == 1

    rotated = ec_key("ehr-es384-2027")
    jwks_server.document = jwks(es_key, rotated)
    # Just fetched: a new kid does not trigger another fetch yet.
    assert_refused(call(http, mint(rotated, claims(ISS, AUD))))
    assert jwks_server.total_hits == 1

    clock.now += 61
    assert call(http, mint(rotated, claims(ISS, AUD))).status_code == 200
    assert jwks_server.total_hits == 2

    # Made-up kids: after one refresh, none until the interval has passed again.
    for _ in range(5):
        assert_refused(call(http, mint(ec_key("made-up"), claims(ISS, AUD))))
    assert jwks_server.total_hits == 2
    clock.now += 61
    assert_refused(call(http, mint(ec_key("made-up"), claims(ISS, AUD))))
    assert jwks_server.total_hits == 3
    # Known kids are served from the cache meanwhile.
    assert call(http, mint(es_key, claims(ISS, AUD))).status_code == 200
    assert jwks_server.total_hits == 3


def test_the_key_set_is_refetched_when_its_cache_expires(secured: Flask, jwks_server: JwksServer,
                                                         es_key: SigningKey, tmp_path: Path) -> None:
    clock = FakeClock()
    settings: Settings = secured.config["NEEDLECHECK_SETTINGS"]
    secured.extensions["needlecheck.client_auth"] = ClientAuthenticator(
        settings.trusted_clients, AuthLimits(jwks_cache_seconds=300), SqliteReplayCache(tmp_path / "r.sqlite3"),
        clock=clock)
    http = secured.test_client()
    assert call(http, mint(es_key, claims(ISS, AUD))).status_code == 200
    # The client drops a key (compromised): once the cache expires, tokens signed with it are refused.
    jwks_server.document = jwks(ec_key("replacement"))
    clock.now += 301
    assert_refused(call(http, mint(es_key, claims(ISS, AUD))))
    assert jwks_server.total_hits == 2


def test_an_unreachable_key_server_refuses_and_is_not_hammered(tmp_path: Path, es_key: SigningKey,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    with serve_jwks({}) as gone:
        url = gone.url()
    application = create_app(settings_for(tmp_path, TrustedClient(ISS, jwks_url=url)))
    http = application.test_client()
    for _ in range(3):
        assert_refused(call(http, mint(es_key, claims(ISS, AUD))))
    assert refusal_reasons(caplog).count("could not fetch the JWK Set") == 1


# ------------------------------------------------------------------------------------------------ logs


def assert_no_part_of(token: str, caplog: pytest.LogCaptureFixture) -> None:
    text = caplog.text + "\n".join(str(record.args) for record in caplog.records)
    for part in [token, *[segment for segment in token.split(".") if len(segment) > 8]]:
        assert part not in text


def test_no_part_of_any_token_reaches_the_log(http: FlaskClient, es_key: SigningKey,
                                              caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    tokens = [mint(es_key, claims(ISS, AUD)), mint(es_key, claims(ISS, AUD, age=1000)),
              mint(ec_key(es_key.kid), claims(ISS, AUD)), _unsigned(es_key)]
    tokens.append(tokens[0])  # a replay
    statuses = [call(http, token).status_code for token in tokens]
    assert statuses == [200, 401, 401, 401, 401]
    assert len([r for r in caplog.records if r.name == "needlecheck.auth" and r.levelno >= logging.WARNING]) == 4
    for token in tokens:
        assert_no_part_of(token, caplog)


def test_the_refusal_is_the_same_whatever_the_reason(http: FlaskClient, es_key: SigningKey) -> None:
    bodies = {call(http, token).get_data() for token in (
        mint(es_key, claims(ISS, AUD, age=1000)), mint(es_key, claims("https://x.example", AUD)), "garbage")}
    assert len(bodies) == 1


def test_a_token_is_checked_even_on_loopback(secured: Flask) -> None:
    settings: Settings = secured.config["NEEDLECHECK_SETTINGS"]
    assert settings.bound_to_loopback
    assert_refused(call(secured.test_client(), None))


def test_open_mode_needs_no_token(client: FlaskClient) -> None:
    assert client.post(ORDER_SIGN, json=order_sign_body()).status_code == 200

