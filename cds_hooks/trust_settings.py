"""The trust part of the settings: which CDS clients may call, how their JWTs are checked, who may call from a
browser. Parsed from the TOML tables ``[[trusted_clients]]`` and ``[auth]``; ``settings.py`` wraps the errors
raised here into ``SettingsError``.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any
from urllib.parse import urlsplit

from needlecheck.cds_hooks.jwks import SIGNING_ALGORITHMS, key_for_algorithm


class TrustConfigError(ValueError):
    """A trust setting is invalid; the message names the setting."""


@dataclass(frozen=True)
class TrustedClient:
    """A CDS client allowed to call the service: its issuer, where its keys are, and what it may name.

    ``jwks_url`` or ``keys`` (an inline JWK Set) verify tokens without a ``jku`` header; a token with a ``jku``
    header is verified with the JWK Set at that URL only if it is one of ``jku``. ``tenants``, when not empty,
    is the list of ``tenant`` claim values accepted. ``fhir_hosts`` are the FHIR server hosts (``host`` or
    ``host:port``) the client may name in ``fhirServer``; empty means none.
    """

    iss: str
    jwks_url: str | None = None
    keys: tuple[dict[str, Any], ...] = ()
    jku: tuple[str, ...] = ()
    tenants: tuple[str, ...] = ()
    fhir_hosts: tuple[str, ...] = ()


@dataclass(frozen=True)
class AuthLimits:
    """How strictly a client JWT's times are checked, and how often a client's JWK Set may be fetched."""

    clock_leeway_seconds: int = 60
    max_token_age_seconds: int = 300
    jwks_min_refresh_seconds: float = 60.0
    jwks_cache_seconds: float = 300.0


MAX_LEEWAY_SECONDS = 60
_CLIENT_KEYS = {"iss", "jwks_url", "keys", "jku", "tenants", "fhir_hosts"}


def _strings(value: Any, name: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(item, str) and item.strip() for item in value):
        raise TrustConfigError(f"setting '{name}' must be a list of non-empty strings")
    return tuple(value)


def _key_url(value: Any, name: str, allow_http: bool) -> str:
    """A URL a JWK Set is fetched from: absolute, https (http only with ``allow_http``)."""
    if not isinstance(value, str):
        raise TrustConfigError(f"setting '{name}' must be a URL string")
    parts = urlsplit(value)
    schemes = ("https", "http") if allow_http else ("https",)
    if parts.scheme not in schemes or not parts.hostname:
        raise TrustConfigError(f"setting '{name}' must be an absolute https URL"
                               + ("" if allow_http else " (http only with allow_http = true, for tests)"))
    return value


def _fhir_host(value: str, name: str) -> str:
    host = value.strip().lower()
    parts = urlsplit(f"//{host}")
    try:
        port = parts.port
    except ValueError:
        port = None
        host = ""
    if not parts.hostname or "/" in host or "@" in host or (":" in host and port is None and "[" not in host):
        raise TrustConfigError(f"setting '{name}' must list host names (host or host:port), not '{value}'")
    return host


def _inline_keys(value: Any, name: str) -> tuple[dict[str, Any], ...]:
    if not isinstance(value, list) or not value or not all(isinstance(key, dict) for key in value):
        raise TrustConfigError(f"setting '{name}' must be a non-empty array of JWK tables")
    for index, key in enumerate(value):
        where = f"{name}[{index}]"
        if not isinstance(key.get("kid"), str) or not key["kid"]:
            raise TrustConfigError(f"setting '{where}.kid' is required")
        if "d" in key or "p" in key or "k" in key:
            raise TrustConfigError(f"setting '{where}' holds private or symmetric key material; give the public key")
        usable = [alg for alg in SIGNING_ALGORITHMS if key.get("alg") in (None, alg)]
        if not any(_fits(key, alg) for alg in usable):
            raise TrustConfigError(f"setting '{where}' is not an RSA or EC public key for "
                                   f"{', '.join(SIGNING_ALGORITHMS)}")
    return tuple(dict(key) for key in value)


def _fits(key: dict[str, Any], algorithm: str) -> bool:
    import jwt  # only configured inline keys are checked; every command reads the settings (see jwks.py)

    try:
        key_for_algorithm(key, algorithm)
    except (jwt.PyJWTError, ValueError):
        return False
    return True


def parse_trusted_clients(value: Any, allow_http: bool) -> tuple[TrustedClient, ...]:
    """The ``[[trusted_clients]]`` array of tables, validated."""
    if not isinstance(value, list):
        raise TrustConfigError("setting 'trusted_clients' must be an array of tables ([[trusted_clients]])")
    clients: list[TrustedClient] = []
    for index, table in enumerate(value):
        where = f"trusted_clients[{index}]"
        if not isinstance(table, dict):
            raise TrustConfigError(f"setting '{where}' must be a table")
        unknown = sorted(set(table) - _CLIENT_KEYS)
        if unknown:
            raise TrustConfigError(f"unknown setting '{where}.{unknown[0]}'")
        iss = table.get("iss")
        if not isinstance(iss, str) or not iss.strip():
            raise TrustConfigError(f"setting '{where}.iss' is required and must be a non-empty string")
        if any(client.iss == iss for client in clients):
            raise TrustConfigError(f"setting '{where}.iss' repeats the issuer '{iss}' of an earlier client")
        jwks_url = table.get("jwks_url")
        if jwks_url is not None:
            jwks_url = _key_url(jwks_url, f"{where}.jwks_url", allow_http)
        keys = _inline_keys(table["keys"], f"{where}.keys") if "keys" in table else ()
        if jwks_url and keys:
            raise TrustConfigError(f"setting '{where}' gives both 'jwks_url' and 'keys'; give one")
        jku = tuple(_key_url(url, f"{where}.jku", allow_http) for url in _strings(table.get("jku", []),
                                                                                   f"{where}.jku"))
        if not (jwks_url or keys or jku):
            raise TrustConfigError(f"setting '{where}' needs 'jwks_url', 'keys' or 'jku' to verify its tokens")
        tenants = _strings(table.get("tenants", []), f"{where}.tenants")
        hosts = tuple(_fhir_host(host, f"{where}.fhir_hosts")
                      for host in _strings(table.get("fhir_hosts", []), f"{where}.fhir_hosts"))
        clients.append(TrustedClient(iss, jwks_url, keys, jku, tenants, hosts))
    return tuple(clients)


def parse_auth_limits(value: Any) -> AuthLimits:
    """The ``[auth]`` table, validated: the leeway is at most 60 s, every bound positive."""
    if not isinstance(value, dict):
        raise TrustConfigError("setting 'auth' must be a table")
    types = {item.name: type(getattr(AuthLimits(), item.name)) for item in fields(AuthLimits)}
    unknown = sorted(set(value) - set(types))
    if unknown:
        raise TrustConfigError(f"unknown setting 'auth.{unknown[0]}'")
    given: dict[str, Any] = {}
    for name, item in value.items():
        number_ok = isinstance(item, int | float) and not isinstance(item, bool)
        if not number_ok or (types[name] is int and not isinstance(item, int)):
            raise TrustConfigError(f"setting 'auth.{name}' must be a number of seconds")
        if item < 0 or (item == 0 and name != "clock_leeway_seconds"):
            raise TrustConfigError(f"setting 'auth.{name}' must be positive")
        given[name] = types[name](item)
    limits = AuthLimits(**given)
    if limits.clock_leeway_seconds > MAX_LEEWAY_SECONDS:
        raise TrustConfigError(f"setting 'auth.clock_leeway_seconds' must be at most {MAX_LEEWAY_SECONDS}")
    return limits


def public_base_url(value: Any) -> str:
    """The URL clients call the service at (the ``aud`` base), without a trailing slash."""
    if not isinstance(value, str):
        raise TrustConfigError("setting 'public_base_url' must be a URL string")
    parts = urlsplit(value)
    if parts.scheme not in ("https", "http") or not parts.hostname or parts.query or parts.fragment:
        raise TrustConfigError("setting 'public_base_url' must be an absolute http(s) URL without query or fragment")
    return value.rstrip("/")


def cors_origins(value: Any) -> tuple[str, ...]:
    """Browser origins (``scheme://host[:port]``) allowed to call the service; no wildcards."""
    origins = _strings(value, "cors_origins")
    for origin in origins:
        parts = urlsplit(origin)
        # No wildcards or regex characters: flask-cors would read the entry as a pattern.
        if parts.scheme not in ("https", "http") or not parts.hostname or parts.path or parts.query \
                or any(character in origin for character in "*\\]?$^[()"):
            raise TrustConfigError(f"setting 'cors_origins' must list origins such as https://ehr.example.org, "
                                   f"not '{origin}'")
    return origins


def check_trust(clients: tuple[TrustedClient, ...], base_url: str | None) -> None:
    """What must hold across settings: trusted clients need the public base URL their ``aud`` is built on."""
    if clients and not base_url:
        raise TrustConfigError("setting 'public_base_url' is required when trusted_clients are configured "
                               "(a token's aud must equal the URL the client calls)")
