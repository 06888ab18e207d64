"""One pool of keep-alive connections to the FHIR servers per worker process, shared by all its hook calls.

A new ``requests.Session`` per hook call opened new TCP (and TLS) connections for every call's FHIR fallback.
Each call still gets its own session (``audit.TimedFhirSession``: its own timing, its own cookie jar), but the
sessions of one process share this adapter and so its connections. Nothing of a call stays in the pool but the
open sockets: the access token travels in each request's headers (``FhirClient``), never in the adapter, and
cookies a server sets stay in the call's own jar.

The adapter is created on first use in each process, after gunicorn forks (a socket must not be shared by two
processes), and holds up to ``FHIR_THREADS`` connections per FHIR server, as many as the worker's FHIR thread
pool can use at once.
"""

from __future__ import annotations

import os
import threading

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
                _adapter = HTTPAdapter(pool_connections=FHIR_SERVERS, pool_maxsize=FHIR_THREADS)
                _owner_pid = pid
    assert _adapter is not None
    return _adapter
