"""One pool of keep-alive connections to the FHIR servers per worker process, shared by all its hook calls.

A new ``requests.Session`` per hook call opened new TCP (and TLS) connections for every call's FHIR fallback.
Each call still gets its own session (``audit.TimedFhirSession``: its own timing, its own cookie jar), but the
sessions of one process share this adapter and so its connections. Nothing of a call stays in the pool but the
open sockets: the access token travels in each request's headers (``FhirClient``), never in the adapter, and
cookies a server sets stay in the call's own jar.

The adapter is created on first use in each process, after gunicorn forks (a socket must not be shared by two
processes), and holds up to ``FHIR_THREADS`` connections per FHIR server, as many as the worker's FHIR thread
pool can use at once.

It also remembers which servers answer batch Bundles (``fhir_reads``: a call's queries sent as one request),
so that a call does not read the server's CapabilityStatement first, and what the environment says about
reaching each server (``environment_settings``), so that a request does not read the environment again.
"""

from __future__ import annotations

import os
import threading
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from requests.adapters import HTTPAdapter

FHIR_THREADS = 16  # threads of each worker's FHIR thread pool (app.py), so connections one server may need
FHIR_SERVERS = 8  # FHIR servers whose connections are kept (the least recently used beyond that are closed)

_lock = threading.Lock()
_adapter: HTTPAdapter | None = None
_owner_pid: int | None = None


def worker_adapter() -> HTTPAdapter:
    """This process's shared adapter, created now if need be (thread-safe, like the pools it holds)."""
    global _adapter, _owner_pid
    pid = os.getpid()
    if _owner_pid != pid:
        with _lock:
            if _owner_pid != pid:
                # An adapter inherited across a fork is dropped, not closed: its sockets are the parent's.
                from requests.adapters import HTTPAdapter  # here: `check` never fetches, and requests costs ~90 ms

                _adapter = HTTPAdapter(pool_connections=FHIR_SERVERS, pool_maxsize=FHIR_THREADS)
                _owner_pid = pid
    assert _adapter is not None
    return _adapter


# The proxies and CA bundle the environment gives each FHIR server (read once per worker and server).
_environment: dict[str, tuple[dict[str, str], bool | str]] = {}


def environment_settings(base_url: str) -> tuple[dict[str, str], bool | str]:
    """The proxies (``HTTPS_PROXY``, ``NO_PROXY`` …) and the CA bundle (``REQUESTS_CA_BUNDLE``,
    ``CURL_CA_BUNDLE``) the environment gives requests to ``base_url``, as ``requests`` would read them.

    ``requests`` reads them again for every request its sessions send (``trust_env``), walking the whole
    environment twice: 0.2-0.5 ms a request, more in a container with many variables. A worker's environment
    does not change while it runs, so the FHIR sessions (``trust_env`` off) are given what it says, read once
    per worker and server. ``trust_env`` would also take credentials from ``~/.netrc``, and they would replace
    the EHR's bearer token in the request; a FHIR request carries that token only.
    """
    with _lock:
        known = _environment.get(base_url)
    if known is None:
        from requests.utils import get_environ_proxies  # here: see worker_adapter

        ca_bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
        known = (get_environ_proxies(base_url), ca_bundle or True)
        with _lock:
            _environment[base_url] = known
            while len(_environment) > FHIR_SERVERS:
                del _environment[next(iter(_environment))]
    return known


# Whether each FHIR server answers batches, as its CapabilityStatement says (learnt once per worker and server).
BATCH_MEMORY_SECONDS = 3600.0  # a server's upgrade is learnt within the hour
_batch_support: dict[str, tuple[bool, float]] = {}
_batch_asked: set[str] = set()


def batch_support(base_url: str) -> bool | None:
    """True or False when this worker knows whether ``base_url`` answers batches; None when it must ask."""
    with _lock:
        known = _batch_support.get(base_url)
        if known is None or known[1] < time.monotonic():
            return None
        return known[0]


def should_ask_batch_support(base_url: str) -> bool:
    """True once for a server whose batch support is unknown (so concurrent calls ask the server once)."""
    with _lock:
        if base_url in _batch_asked:
            return False
        _batch_asked.add(base_url)
        return True


def remember_batch_support(base_url: str, supported: bool) -> None:
    """Note what a server's CapabilityStatement (or a refused batch) says; the least recently learnt beyond
    ``FHIR_SERVERS`` servers are forgotten."""
    with _lock:
        _batch_support.pop(base_url, None)
        _batch_support[base_url] = (supported, time.monotonic() + BATCH_MEMORY_SECONDS)
        _batch_asked.discard(base_url)
        while len(_batch_support) > FHIR_SERVERS:
            del _batch_support[next(iter(_batch_support))]


def forget_batch_support(base_url: str) -> None:
    """Forget what this worker knows of ``base_url``'s batches (it is asked again on its next call)."""
    with _lock:
        _batch_support.pop(base_url, None)
        _batch_asked.discard(base_url)


def declares_batch(capability_statement: dict[str, Any]) -> bool:
    """Whether a CapabilityStatement lists the ``batch`` interaction for a server REST endpoint."""
    for rest in capability_statement.get("rest") or []:
        if isinstance(rest, dict) and rest.get("mode") in (None, "server") and any(
                isinstance(i, dict) and i.get("code") == "batch" for i in rest.get("interaction") or []):
            return True
    return False
