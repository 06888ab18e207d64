"""A real FHIR R4 server (sekmet-fhir) started in-process for the test suite.

sekmet-fhir (pinned to 0.1.1 in pyproject's ``test`` extra) was chosen after an evaluation of FHIR
servers installable from PyPI/npm; ``tests/test_fhir_server_contract.py`` pins the search semantics
Needlecheck relies on, so an upgrade that changes them fails there first.

Design choice: in-process, one uvicorn thread per server, no global settings
----------------------------------------------------------------------------
sekmet keeps a module-global ``Settings`` (``sekmet.config.set_settings``/``get_settings``), which
would make two servers in one process unsafe if they read it. They do not: in sekmet 0.1.1 only
``create_app(settings=None)`` (the fallback) and the CLI call ``get_settings()``. When settings are
passed explicitly, ``create_app`` builds its own ``AppContext`` holding those settings and its own
``Store`` (one SQLite connection per store; with ``":memory:"`` every connection is a separate,
empty database). So this module never calls ``set_settings`` and every ``FhirTestServer`` gets:

* its own settings object, FastAPI app and in-memory database (nothing written to disk),
* its own listening socket on 127.0.0.1, bound *before* the app is built so ``base_url`` (which
  sekmet uses for absolute paging links, not the request's Host) names the real port, and so there
  is no "pick a free port, close it, hope nobody takes it" race,
* its own random bearer token.

Servers can therefore run one after another or side by side in one process. Starting a fresh
server (~0.15 s for the first one in a process, ~0.03 s after that; ``stop()`` takes ~0.2 s) is the
way to get an empty database, which is why there is no ``reset()``: ``sekmet reset`` does not
apply to ``:memory:``, and wiping sekmet's tables ourselves would couple the tests to its private
schema. A subprocess per server (``sekmet serve`` with ``SEKMET_PORT``, ``SEKMET_BASE_URL``,
``SEKMET_DB=:memory:``) would also work but takes ~1 s to start and needs a YAML config file for
auth and the simulator, so it is not used.

The remaining process-global state in sekmet (traffic-log run id, SMART ``jti`` cache, UI job
lists) is only touched by features these tests do not use (scenarios, SMART tokens, the /ui).
``create_app`` also calls ``logging.basicConfig(level=INFO)``; see ``_create_app_quietly``.

Making the server unreachable
-----------------------------
``stop()`` closes the listening socket and any keep-alive connections; ``base_url`` stays
readable afterwards, so a test can hand that URL to the service and check how it behaves when the
FHIR server is down (the connection is refused).
"""

from __future__ import annotations

import logging
import secrets
import socket
import threading
import time
from types import TracebackType
from typing import Any, Self

import requests
import uvicorn
from fastapi import FastAPI
from sekmet.config import ServerAuth, Settings, SimulatorSettings
from sekmet.main import create_app

__all__ = ["FhirServerError", "FhirTestServer", "load_bundle"]

FHIR_JSON = "application/fhir+json"
_HOST = "127.0.0.1"


class FhirServerError(RuntimeError):
    """The test FHIR server failed to start, stop, or accept a request."""


class FhirTestServer:
    """An in-process sekmet FHIR server on 127.0.0.1 with an empty in-memory database.

    Usage::

        with FhirTestServer() as fhir:
            fhir.load(bundle)
            requests.get(f"{fhir.base_url}/Patient/123", headers=fhir.auth_headers)

    A server is single-use: once stopped it cannot be restarted (start a new one instead).
    """

    def __init__(self, token: str | None = None, *, startup_timeout: float = 15.0) -> None:
        """Prepare (but do not start) a server.

        Args:
            token: the static bearer token the server accepts; random when omitted so that a test
                which forgets to send ``.token`` fails with 401 instead of passing by accident.
            startup_timeout: seconds to wait for ``GET /metadata`` to answer 200 in ``start()``.
        """
        self.token: str = token or secrets.token_urlsafe(16)
        self.startup_timeout = startup_timeout
        #: wall-clock seconds ``start()`` took, from building the app to the first 200 on /metadata.
        self.startup_seconds: float | None = None
        self._port: int | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._thread_error: BaseException | None = None
        self._app: FastAPI | None = None
        self._stopped = False

    # ------------------------------------------------------------------ properties

    @property
    def port(self) -> int:
        """The TCP port the server listens (or listened) on; only known after ``start()``."""
        if self._port is None:
            raise FhirServerError("FhirTestServer has not been started")
        return self._port

    @property
    def base_url(self) -> str:
        """FHIR base URL without a trailing slash, e.g. ``http://127.0.0.1:54321/fhir``.

        Still available after ``stop()``, to point a client at a server that is down.
        """
        return f"http://{_HOST}:{self.port}/fhir"

    @property
    def auth_headers(self) -> dict[str, str]:
        """Headers for an authorised FHIR JSON request to this server."""
        return {"Authorization": f"Bearer {self.token}", "Accept": FHIR_JSON}

    @property
    def is_running(self) -> bool:
        """True between a successful ``start()`` and ``stop()``."""
        return self._thread is not None and self._thread.is_alive() and not self._stopped

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> Self:
        """Start the server and block until ``GET /metadata`` answers 200.

        Raises:
            FhirServerError: if the server was already started, its thread died, or it did not
                answer within ``startup_timeout`` seconds (the server is stopped again first).
        """
        if self._thread is not None:
            raise FhirServerError("FhirTestServer is single-use; create a new one")
        t0 = time.perf_counter()
        # Bind first: the port must be known before the app is built (it goes into base_url) and
        # keeping the socket open means no other process can grab the port in between.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((_HOST, 0))
        sock.listen(128)
        self._port = sock.getsockname()[1]

        try:
            settings = Settings(
                base_url=self.base_url,
                host=_HOST,  # sekmet's default is 0.0.0.0
                port=self._port,
                db_path=":memory:",  # default is ./data/sekmet.db, which persists between runs
                # Default ON: it answers Claim/ServiceRequest/... on its own ~2 s after they are
                # written, which would make result sets change under the tests.
                simulator=SimulatorSettings(enabled=False),
                log_inbound=False,  # the traffic log would grow the in-memory DB on every request
                server_auth=ServerAuth(types=["bearer"], tokens=[self.token]),
            )
            self._app = _create_app_quietly(settings)
            config = uvicorn.Config(
                self._app,
                log_config=None,  # don't let uvicorn reconfigure the test process's logging
                log_level="warning",
                access_log=False,
                lifespan="off",  # sekmet registers no startup/shutdown handlers
                # Bound the shutdown so stop() cannot hang on a client holding a connection open.
                timeout_graceful_shutdown=2,
            )
            self._server = uvicorn.Server(config)
            self._thread = threading.Thread(
                target=self._run, args=(sock,), name=f"sekmet-fhir-{self._port}", daemon=True
            )
        except BaseException:
            sock.close()  # nothing else owns the socket yet
            raise
        self._thread.start()
        try:
            self._wait_until_ready()
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.perf_counter() - t0
        return self

    def _run(self, sock: socket.socket) -> None:
        """Thread body: serve until ``should_exit``; remember why it died if it died early."""
        assert self._server is not None
        try:
            self._server.run(sockets=[sock])
        except BaseException as exc:  # incl. SystemExit, which uvicorn raises on startup failure
            self._thread_error = exc
        finally:
            sock.close()

    def _wait_until_ready(self) -> None:
        """Poll ``/metadata`` (it needs no auth in sekmet) until 200 or the deadline."""
        deadline = time.monotonic() + self.startup_timeout
        last_problem = "no answer yet"
        while time.monotonic() < deadline:
            assert self._thread is not None
            if not self._thread.is_alive():
                raise FhirServerError(
                    f"sekmet server thread exited during startup on {self.base_url}: {self._thread_error!r}"
                )
            try:
                r = requests.get(f"{self.base_url}/metadata", headers={"Accept": FHIR_JSON}, timeout=2)
                if r.status_code == 200:
                    return
                last_problem = f"HTTP {r.status_code}: {r.text[:300]}"
            except requests.RequestException as exc:
                last_problem = repr(exc)
            time.sleep(0.02)
        raise FhirServerError(
            f"sekmet did not answer GET {self.base_url}/metadata with 200 within "
            f"{self.startup_timeout:.0f} s; last problem: {last_problem}"
        )

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the server; afterwards connections to ``base_url`` are refused. Idempotent.

        Raises:
            FhirServerError: if the server thread did not finish within ``timeout`` seconds.
        """
        if self._stopped:
            return
        self._stopped = True
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout)
            if self._thread.is_alive():
                # force_exit skips waiting for open connections/tasks.
                self._server.force_exit = True
                self._thread.join(2)
            if self._thread.is_alive():
                raise FhirServerError(f"sekmet server thread on port {self._port} did not stop")
        self._close_store()

    def _close_store(self) -> None:
        """Free the in-memory database now rather than when the app is garbage-collected.

        This reaches into sekmet's ``AppContext`` (``app.state.ctx.store.conn``), so it is
        best-effort: a future sekmet that renames these only loses the early cleanup.
        """
        app, self._app = self._app, None
        if app is None:
            return
        try:
            conn = app.state.ctx.store.conn
        except AttributeError:
            return
        conn.close()

    def __enter__(self) -> Self:
        """Start the server (unless already started) and return it."""
        return self if self.is_running else self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop the server."""
        self.stop()

    # ------------------------------------------------------------------ data

    def load(self, bundle: dict[str, Any]) -> dict[str, Any]:
        """POST a transaction (or batch) Bundle to the base URL and return the response Bundle.

        Raises:
            FhirServerError: with the OperationOutcome's text if the server rejected the Bundle
                (non-2xx), or, for a batch, if any entry did not succeed.
        """
        if not self.is_running:
            raise FhirServerError("FhirTestServer is not running")
        return load_bundle(self.base_url, self.auth_headers, bundle)


def load_bundle(base_url: str, auth_headers: dict[str, str], bundle: dict[str, Any]) -> dict[str, Any]:
    """POST a transaction (or batch) Bundle to ``base_url`` and return the response Bundle.

    Raises:
        FhirServerError: with the OperationOutcome's text if the server rejected the Bundle (non-2xx),
            or, for a batch, if any entry did not succeed.
    """
    r = requests.post(
        base_url,
        json=bundle,
        headers={**auth_headers, "Content-Type": FHIR_JSON},
        timeout=60,
    )
    body: Any
    try:
        body = r.json()
    except ValueError:
        body = None
    if not r.ok:
        detail = _outcome_text(body, r.text)
        raise FhirServerError(f"loading Bundle failed: HTTP {r.status_code}: {detail}")
    if not isinstance(body, dict) or body.get("resourceType") != "Bundle":
        raise FhirServerError(f"loading Bundle: unexpected response {r.text[:500]}")
    # A transaction is all-or-nothing, but a batch answers 200 with per-entry failures.
    responses = [e.get("response") or {} for e in body.get("entry", [])]
    failures = [
        f"entry {i}: {resp.get('status')}: {_outcome_text(resp.get('outcome'), '')}"
        for i, resp in enumerate(responses)
        if not str(resp.get("status", "")).startswith("2")
    ]
    if failures:
        raise FhirServerError("loading Bundle failed: " + "; ".join(failures))
    return body


def _outcome_text(body: Any, fallback: str) -> str:
    """Human-readable text of an OperationOutcome (diagnostics / details.text of each issue)."""
    if isinstance(body, dict) and body.get("resourceType") == "OperationOutcome":
        parts = [
            f"{i.get('severity')}/{i.get('code')}: "
            + (i.get("diagnostics") or i.get("details", {}).get("text") or "")
            + (f" @ {', '.join(i['expression'])}" if i.get("expression") else "")
            for i in body.get("issue", [])
        ]
        if parts:
            return " | ".join(parts)
    return fallback[:2000]


def _create_app_quietly(settings: Settings) -> FastAPI:
    """``sekmet.main.create_app`` without its side effect on the root logger.

    ``create_app`` calls ``logging.basicConfig(level=INFO)``, which outside pytest would attach a
    handler to the root logger and switch the whole process to INFO; undo that.
    """
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        app: FastAPI = create_app(settings)
        return app
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
