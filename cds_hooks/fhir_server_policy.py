"""Which ``fhirServer`` a hook request may point us at, so a caller cannot turn the service against a network.

The URL must be https (http only when ``allow_http`` is set, for tests) and, for an authenticated client, its host
must be one of the client's ``fhir_hosts``. In open mode (no trusted clients, loopback only) any host is allowed.
A request that breaks the policy is refused with a 400 naming ``fhirServer`` rather than answered from prefetch
alone: the EHR's configuration is wrong, and an integrator should see that at once, not as missing checks.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import SplitResult, urlsplit

from needlecheck.cds_hooks.errors import ApiError

DEFAULT_PORTS = {"https": 443, "http": 80}


def host_allowed(parts: SplitResult, allowed_hosts: tuple[str, ...]) -> bool:
    """Whether the URL's host is listed, as ``host`` (any port) or as ``host:port``."""
    host = (parts.hostname or "").lower()
    port = parts.port or DEFAULT_PORTS.get(parts.scheme)
    shown = f"[{host}]" if ":" in host else host
    return host in allowed_hosts or shown in allowed_hosts or f"{shown}:{port}" in allowed_hosts


def check_fhir_server(body: Any, allowed_hosts: tuple[str, ...] | None, allow_http: bool) -> None:
    """Raise ApiError(400) if the request's ``fhirServer`` is not https or its host is not in ``allowed_hosts``
    (None: any host). Requests without a string ``fhirServer`` are left to the request parser."""
    server = body.get("fhirServer") if isinstance(body, dict) else None
    if not isinstance(server, str):
        return
    try:
        parts = urlsplit(server)
        parts.port  # noqa: B018 -- raises ValueError for a port that is not a number
    except ValueError as error:
        raise ApiError(400, "'fhirServer' is not a valid URL", expression="fhirServer") from error
    if not (parts.scheme == "https" or (allow_http and parts.scheme == "http")) or not parts.hostname:
        raise ApiError(400, "'fhirServer' must be an absolute https URL", expression="fhirServer")
    if allowed_hosts is not None and not host_allowed(parts, allowed_hosts):
        raise ApiError(400, "'fhirServer' is not a FHIR server this client may name", code="forbidden",
                       expression="fhirServer")
