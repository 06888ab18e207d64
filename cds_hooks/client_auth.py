"""Trusting CDS clients: every service and feedback call carries ``Authorization: Bearer <JWT>`` (CDS Hooks 2.0
§Trusting CDS Clients), checked here with PyJWT before the request body is read.

A token is accepted only if all of these hold: ``typ`` is ``JWT``; ``alg`` is an allowed asymmetric algorithm;
``kid`` is given and names a key of the issuer (from its inline keys, its JWK Set URL, or a ``jku`` the issuer is
allow-listed for — no other URL is ever fetched); ``iss`` is a trusted client; the signature verifies; ``aud`` is
the exact URL invoked, built from the configured public base URL (never the Host header); ``exp`` has not passed
and ``iat`` is not in the future (with the configured leeway, at most 60 s); the token is not older than the
maximum age; the ``tenant`` is allowed when the client lists tenants; and ``jti`` has never been seen (a replay
cache shared by all workers). Any failure is a 401 that says nothing more; the reason is logged, never the token.
"""

from __future__ import annotations

import importlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

from flask import Flask, Response, g, request

from needlecheck.cds_hooks.errors import operation_outcome
from needlecheck.cds_hooks.jwks import (
    SIGNING_ALGORITHMS,
    InlineKeys,
    KeyMismatch,
    KeySource,
    RemoteKeys,
    key_for_algorithm,
)
from needlecheck.cds_hooks.replay_cache import ReplayCache, open_replay_cache
from needlecheck.cds_hooks.settings import Settings
from needlecheck.cds_hooks.trust_settings import AuthLimits, TrustedClient

if TYPE_CHECKING:
    import jwt

log = logging.getLogger("needlecheck.auth")

PROTECTED_ENDPOINTS = frozenset({"cds_hooks.invoke", "cds_hooks.feedback"})
MAX_TOKEN_CHARACTERS = 8_192
MAX_JTI_CHARACTERS = 256


class AuthenticationFailed(Exception):
    """The call is not from a trusted client. ``reason`` is for the log only: it never holds the token."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class AuthenticatedClient:
    """Who made the current call, as its verified token says."""

    client: TrustedClient
    jti: str
    tenant: str | None


def _shown(value: Any) -> str:
    """An untrusted header or claim value as it may appear in the log: quoted and short."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


@cache
def _claim_failures() -> tuple[tuple[type[jwt.PyJWTError], str], ...]:
    """PyJWT's messages may quote claim values; the log gets these fixed reasons instead."""
    import jwt

    return (
        (jwt.InvalidSignatureError, "signature does not verify"),
        (jwt.ExpiredSignatureError, "token expired (exp)"),
        (jwt.ImmatureSignatureError, "token not yet valid (iat or nbf in the future)"),
        (jwt.InvalidAudienceError, "aud is not the URL invoked"),
        (jwt.InvalidIssuerError, "iss does not match"),
        (jwt.MissingRequiredClaimError, "a required claim (iss, aud, exp, iat, jti) is missing"),
        (jwt.exceptions.InvalidJTIError, "jti is not a string"),
        (jwt.InvalidAlgorithmError, "algorithm does not fit the key"),
        (jwt.InvalidKeyError, "the issuer's key is unusable (too short?)"),
    )


class ClientAuthenticator:
    """Checks client JWTs against the trusted clients of the settings."""

    def __init__(self, clients: tuple[TrustedClient, ...], limits: AuthLimits, replay_cache: ReplayCache,
                 clock: Callable[[], float] = time.monotonic, wall_clock: Callable[[], float] = time.time) -> None:
        # PyJWT (with the cryptography package, ~60-150 ms) is imported only when clients are trusted, and then
        # here: in the gunicorn master, before the workers fork, so they share it. Open mode never needs it.
        importlib.import_module("jwt")
        self._clients = {client.iss: client for client in clients}
        self._limits = limits
        self._replay_cache = replay_cache
        self._wall_clock = wall_clock
        # Every URL a key may be fetched from is known now; a token can only pick among them.
        self.remote_keys: dict[str, RemoteKeys] = {}
        for client in clients:
            for url in (client.jwks_url, *client.jku):
                if url and url not in self.remote_keys:
                    self.remote_keys[url] = RemoteKeys(url, limits.jwks_min_refresh_seconds,
                                                       limits.jwks_cache_seconds, clock)
        self._inline_keys = {client.iss: InlineKeys(client.keys) for client in clients if client.keys}

    def authenticate(self, authorization: str | None, audience: str) -> AuthenticatedClient:
        """The client whose token ``authorization`` carries, for a call of ``audience``; raises
        AuthenticationFailed otherwise."""
        import jwt  # loaded in __init__

        token = _bearer_token(authorization)
        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError as error:
            raise AuthenticationFailed(f"not a well-formed JWT ({type(error).__name__})") from error
        algorithm, kid = header.get("alg"), header.get("kid")
        if algorithm not in SIGNING_ALGORITHMS:
            raise AuthenticationFailed(f"alg {_shown(algorithm)} is not an allowed asymmetric algorithm")
        if header.get("typ") != "JWT":
            raise AuthenticationFailed(f"typ is {_shown(header.get('typ'))}, not 'JWT'")
        if not isinstance(kid, str) or not kid:
            raise AuthenticationFailed("kid is missing")
        issuer = unverified.get("iss")
        client = self._clients.get(issuer) if isinstance(issuer, str) else None
        if client is None:
            raise AuthenticationFailed(f"iss {_shown(issuer)} is not a trusted client")
        jwk = self._key_source(client, header.get("jku")).find(kid)
        if jwk is None:
            raise AuthenticationFailed(f"kid {_shown(kid)} is not a key of {client.iss}")
        try:
            key = key_for_algorithm(jwk, algorithm)
        except (KeyMismatch, jwt.PyJWTError) as error:
            raise AuthenticationFailed(f"key {_shown(kid)} of {client.iss} cannot verify {algorithm}") from error
        claims = self._verified_claims(token, key, algorithm, audience, client)
        return self._first_use(client, claims)

    def _key_source(self, client: TrustedClient, jku: Any) -> KeySource:
        if jku is not None:
            if not isinstance(jku, str) or jku not in client.jku:
                raise AuthenticationFailed(f"jku {_shown(jku)} is not allow-listed for {client.iss}")
            return self.remote_keys[jku]
        if client.jwks_url:
            return self.remote_keys[client.jwks_url]
        if client.iss in self._inline_keys:
            return self._inline_keys[client.iss]
        raise AuthenticationFailed(f"no jku, and {client.iss} has keys only at jku URLs")

    def _verified_claims(self, token: str, key: jwt.PyJWK, algorithm: str, audience: str,
                         client: TrustedClient) -> dict[str, Any]:
        import jwt  # loaded in __init__

        try:
            claims: dict[str, Any] = jwt.decode(
                token, key, algorithms=[algorithm], audience=audience, issuer=client.iss,
                leeway=self._limits.clock_leeway_seconds,
                options={"require": ["iss", "aud", "exp", "iat", "jti"], "enforce_minimum_key_length": True})
        except jwt.PyJWTError as error:
            reason = next((text for kind, text in _claim_failures() if isinstance(error, kind)),
                          f"token rejected ({type(error).__name__})")
            raise AuthenticationFailed(f"{reason} for {client.iss}") from error
        # The leeway covers the client's clock being behind ours, as it does for exp.
        age = self._wall_clock() - claims["iat"]
        if age > self._limits.max_token_age_seconds + self._limits.clock_leeway_seconds:
            raise AuthenticationFailed(f"token of {client.iss} is {age:.0f} s old, more than "
                                       f"{self._limits.max_token_age_seconds} s")
        tenant = claims.get("tenant")
        if client.tenants and tenant not in client.tenants:
            raise AuthenticationFailed(f"tenant {_shown(tenant)} is not allowed for {client.iss}")
        return claims

    def _first_use(self, client: TrustedClient, claims: dict[str, Any]) -> AuthenticatedClient:
        jti = claims["jti"]
        if not isinstance(jti, str) or not jti or len(jti) > MAX_JTI_CHARACTERS:
            raise AuthenticationFailed(f"jti of {client.iss} is not a string of 1 to {MAX_JTI_CHARACTERS} characters")
        # Remember the id as long as the token could still be accepted: until exp or max age, plus leeway.
        limits = self._limits
        expires_at = min(float(claims["exp"]), float(claims["iat"]) + limits.max_token_age_seconds) \
            + limits.clock_leeway_seconds + 1.0
        if not self._replay_cache.first_use(client.iss, jti, expires_at):
            raise AuthenticationFailed(f"jti {_shown(jti)} of {client.iss} was used before (replay)")
        tenant = claims.get("tenant")
        return AuthenticatedClient(client, jti, tenant if isinstance(tenant, str) else None)


def _bearer_token(authorization: str | None) -> str:
    if not authorization:
        raise AuthenticationFailed("no Authorization header")
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise AuthenticationFailed("Authorization is not a Bearer token")
    if len(token) > MAX_TOKEN_CHARACTERS:
        raise AuthenticationFailed(f"bearer token longer than {MAX_TOKEN_CHARACTERS} characters")
    return token


def unauthorized() -> Response:
    """The answer to any failed authentication: 401, ``WWW-Authenticate: Bearer``, an OperationOutcome that
    gives nothing away."""
    body = operation_outcome("authentication failed", "login")
    return Response(json.dumps(body, separators=(",", ":")), status=401, mimetype="application/fhir+json",
                    headers={"WWW-Authenticate": "Bearer"})


def authenticated_client() -> AuthenticatedClient | None:
    """The client of the current request; None in open mode (no trusted clients configured)."""
    client: AuthenticatedClient | None = g.get("needlecheck_client")
    return client


def install_client_auth(app: Flask, settings: Settings) -> None:
    """Require a trusted client's token on every service and feedback call of ``app``, checked before the view
    runs; nothing to do in open mode (no trusted clients). The authenticator is looked up per request in
    ``app.extensions["needlecheck.client_auth"]``."""
    if not settings.trusted_clients:
        return
    app.extensions["needlecheck.client_auth"] = ClientAuthenticator(
        settings.trusted_clients, settings.auth, open_replay_cache(settings))
    base = (settings.public_base_url or "").rstrip("/")

    @app.before_request
    def authenticate_client() -> Response | None:
        # Preflight requests carry no credentials (CORS); flask-cors answers them.
        if request.method == "OPTIONS" or request.endpoint not in PROTECTED_ENDPOINTS:
            return None
        authenticator: ClientAuthenticator = app.extensions["needlecheck.client_auth"]
        try:
            caller = authenticator.authenticate(request.headers.get("Authorization"), base + request.path)
        except AuthenticationFailed as failure:
            log.warning("client authentication failed on %s: %s", _shown(request.path), failure.reason)
            return unauthorized()
        g.needlecheck_client = caller
        log.debug("client %s authenticated (jti %s)", caller.client.iss, caller.jti)
        return None
