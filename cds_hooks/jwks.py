"""A CDS client's public keys: an inline JWK Set, or one fetched from a URL, cached and refreshed at a bounded rate.

Keys are kept as JWK dicts by ``kid`` and turned into a PyJWT ``PyJWK`` bound to the algorithm the token names
only after that algorithm is checked against the key: an RSA key never verifies an ES token, a P-256 key never
an ES384 one, and a key that states its ``alg`` verifies that algorithm only.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from jwt import PyJWK

log = logging.getLogger("needlecheck.auth")

# The asymmetric algorithms CDS Hooks allows (never none, never HMAC), with the key type and curve they need.
SIGNING_ALGORITHMS: dict[str, tuple[str, str | None]] = {
    "RS256": ("RSA", None), "RS384": ("RSA", None), "RS512": ("RSA", None),
    "PS256": ("RSA", None), "PS384": ("RSA", None), "PS512": ("RSA", None),
    "ES256": ("EC", "P-256"), "ES384": ("EC", "P-384"), "ES512": ("EC", "P-521"),
}
MAX_JWKS_BYTES = 256_000
FETCH_TIMEOUT_SECONDS = (2.0, 3.0)  # connect, read: a token check must not hang a worker thread


class KeyMismatch(ValueError):
    """The key cannot verify the algorithm the token names."""


def key_for_algorithm(jwk: dict[str, Any], algorithm: str) -> PyJWK:
    """``jwk`` as a PyJWT key bound to ``algorithm``; raises KeyMismatch or a PyJWTError if it does not fit."""
    if algorithm not in SIGNING_ALGORITHMS:
        raise KeyMismatch(f"algorithm {algorithm!r} is not allowed")
    key_type, curve = SIGNING_ALGORITHMS[algorithm]
    if jwk.get("kty") != key_type or (curve is not None and jwk.get("crv") != curve):
        raise KeyMismatch(f"key type does not fit {algorithm}")
    if jwk.get("alg") not in (None, algorithm):
        raise KeyMismatch(f"key is for {jwk.get('alg')!r}, not {algorithm}")
    # PyJWT and the cryptography package cost ~60 ms to import: only a service with trusted clients pays it
    # (settings are read by every command, ``needlecheck check`` included).
    from jwt import PyJWK

    return PyJWK(jwk, algorithm=algorithm)


def signing_keys(document: Any) -> dict[str, dict[str, Any]]:
    """The public signing keys of a JWK Set document by ``kid`` (keys without a kid, for encryption, or
    carrying private or symmetric material are left out)."""
    keys = document.get("keys") if isinstance(document, dict) else None
    found: dict[str, dict[str, Any]] = {}
    for key in keys if isinstance(keys, list) else []:
        if not isinstance(key, dict) or not isinstance(key.get("kid"), str) or not key["kid"]:
            continue
        if key.get("use") not in (None, "sig") or key.get("kty") not in ("RSA", "EC"):
            continue
        if "d" in key or "k" in key:
            continue
        found.setdefault(key["kid"], key)
    return found


class KeySource(Protocol):
    """Where the keys of one client (or one allow-listed ``jku``) come from."""

    def find(self, kid: str) -> dict[str, Any] | None:
        """The JWK with ``kid``, or None."""
        ...


class InlineKeys:
    """Keys given in the configuration: never fetched, never refreshed."""

    def __init__(self, keys: tuple[dict[str, Any], ...]) -> None:
        self._keys = signing_keys({"keys": list(keys)})

    def find(self, kid: str) -> dict[str, Any] | None:
        """The configured JWK with ``kid``, or None."""
        return self._keys.get(kid)


class RemoteKeys:
    """A JWK Set fetched from ``url``; refetched when older than ``cache_seconds`` or when a token names a kid it
    lacks, but never more often than once per ``min_refresh_seconds`` (failed fetches count), so tokens with
    made-up kids cannot make us hammer the client's server. A failed fetch keeps the keys we had."""

    def __init__(self, url: str, min_refresh_seconds: float, cache_seconds: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.url = url
        self._min_refresh = min_refresh_seconds
        self._cache_seconds = cache_seconds
        self._clock = clock
        self._keys: dict[str, dict[str, Any]] = {}
        self._fetched_at: float | None = None
        self._attempted_at: float | None = None
        self._lock = threading.Lock()
        self.fetches = 0

    def find(self, kid: str) -> dict[str, Any] | None:
        """The JWK with ``kid``, fetching the set first if it is stale or lacks the kid and the rate allows."""
        with self._lock:
            now = self._clock()
            stale = self._fetched_at is None or now - self._fetched_at >= self._cache_seconds
            may_fetch = self._attempted_at is None or now - self._attempted_at >= self._min_refresh
            if (stale or kid not in self._keys) and may_fetch:
                self._attempted_at = now
                self._refresh(now)
            return self._keys.get(kid)

    def _refresh(self, now: float) -> None:
        import requests  # ~90 ms to import; settings (which import this module) are read by every command

        self.fetches += 1
        try:
            document = _fetch_json(self.url)
        except (requests.RequestException, ValueError) as error:
            log.warning("could not fetch the JWK Set at %s: %s", self.url, type(error).__name__)
            return
        keys = signing_keys(document)
        if not keys:
            log.warning("the JWK Set at %s has no usable signing keys", self.url)
            return
        self._keys = keys
        self._fetched_at = now


def _fetch_json(url: str) -> Any:
    """GET ``url`` without following redirects, bounded in time and size."""
    import requests

    with requests.get(url, timeout=FETCH_TIMEOUT_SECONDS, allow_redirects=False, stream=True,
                      headers={"Accept": "application/json"}) as response:
        if response.status_code != 200:
            raise ValueError(f"status {response.status_code}")
        body = b""
        for chunk in response.iter_content(chunk_size=16_384):
            body += chunk
            if len(body) > MAX_JWKS_BYTES:
                raise ValueError("JWK Set too large")
        return json.loads(body)
