"""What a CDS client has: signing keys (generated here with cryptography), a JWK Set served over real HTTP, and
JWTs minted the way the CDS Hooks sandbox and Inferno mint them (``exp = iat + 300``, ``jti`` a fresh uuid)."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

CURVES = {"P-256": ec.SECP256R1, "P-384": ec.SECP384R1, "P-521": ec.SECP521R1}


@dataclass(frozen=True)
class SigningKey:
    """A client's private key and its public JWK (with ``kid``)."""

    kid: str
    private_key: Any
    public_jwk: dict[str, Any]


def rsa_key(kid: str, bits: int = 2048) -> SigningKey:
    """A new RSA key pair; the JWK states no ``alg``, as most EHRs publish them."""
    private = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    jwk = RSAAlgorithm.to_jwk(private.public_key(), as_dict=True)
    return SigningKey(kid, private, {**jwk, "kid": kid, "use": "sig"})


def ec_key(kid: str, curve: str = "P-384") -> SigningKey:
    """A new EC key pair on ``curve``."""
    private = ec.generate_private_key(CURVES[curve]())
    jwk = ECAlgorithm.to_jwk(private.public_key(), as_dict=True)
    return SigningKey(kid, private, {**jwk, "kid": kid, "use": "sig"})


def jwks(*keys: SigningKey) -> dict[str, Any]:
    """A JWK Set of the public keys."""
    return {"keys": [key.public_jwk for key in keys]}


def claims(iss: str, aud: str, *, age: float = 0, lifetime: float = 300, **extra: Any) -> dict[str, Any]:
    """CDS Hooks client claims issued ``age`` seconds ago, valid ``lifetime`` seconds from issue."""
    issued = int(time.time() - age)
    return {"iss": iss, "aud": aud, "iat": issued, "exp": int(issued + lifetime), "jti": str(uuid.uuid4()),
            **extra}


def mint(key: SigningKey, payload: dict[str, Any], algorithm: str = "ES384", **header: Any) -> str:
    """A signed JWT with ``kid`` and ``typ: JWT`` in its header unless ``header`` overrides them
    (a header value None leaves the field out)."""
    fields = {"kid": key.kid, "typ": "JWT", **header}
    # PyJWT leaves typ out when it is given as None; other fields given as None are dropped here.
    sent = {name: value for name, value in fields.items() if value is not None or name == "typ"}
    token = jwt.encode(payload, key.private_key, algorithm=algorithm, headers=sent)
    decoded = jwt.get_unverified_header(token)
    for name, value in fields.items():
        assert (name in decoded) == (value is not None), f"PyJWT changed header {name}"
    return token


@dataclass
class JwksServer:
    """A real HTTP server on 127.0.0.1 that serves ``document`` at every path and counts the requests per path."""

    document: dict[str, Any]
    hits: Counter[str] = field(default_factory=Counter)
    base_url: str = ""

    def url(self, path: str = "/.well-known/jwks.json") -> str:
        """The absolute URL of ``path`` on this server."""
        return self.base_url + path

    @property
    def total_hits(self) -> int:
        """Requests received on any path."""
        return sum(self.hits.values())


@contextmanager
def serve_jwks(document: dict[str, Any]) -> Iterator[JwksServer]:
    """Run a JwksServer until the block ends."""
    state = JwksServer(document)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state.hits[self.path] += 1
            body = json.dumps(state.document).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
