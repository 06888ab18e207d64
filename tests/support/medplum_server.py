"""Medplum's FHIR router with its in-memory repository, as a second real FHIR server for the suite.

sekmet (``tests/support/fhir_server.py``) is the suite's main FHIR server; the FHIR-fallback tests also run
against Medplum (``@medplum/fhir-router`` 4.5.2, the last release for Node 20) so that the service is not
tuned to one implementation's search semantics. ``tests/support/medplum/server.js`` puts the router behind
``node:http``; the README's test command installs its npm packages (``npm ci``). Medplum's repository gives
no ``next`` links and ignores ``_include``, so paging stays tested on sekmet, and a service that relied on
``_include`` would show it here.

A server is started per use as a Node subprocess on a free loopback port (it prints the port once it
listens) with a random bearer token, and killed on ``stop()``.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import threading
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import pytest

from tests.support.fhir_server import FHIR_JSON, FhirServerError, load_bundle

PACKAGE_DIR = Path(__file__).resolve().parent / "medplum"
STARTUP_SECONDS = 60.0  # loading Medplum's definitions takes about a second; a loaded machine takes longer


class MedplumTestServer:
    """A Medplum FHIR server on 127.0.0.1 with an empty in-memory repository; single-use."""

    def __init__(self) -> None:
        self.token: str = secrets.token_urlsafe(16)
        self._process: subprocess.Popen[str] | None = None
        self._port: int | None = None

    @property
    def base_url(self) -> str:
        """FHIR base URL without a trailing slash; still readable after ``stop()``."""
        if self._port is None:
            raise FhirServerError("MedplumTestServer has not been started")
        return f"http://127.0.0.1:{self._port}/fhir"

    @property
    def auth_headers(self) -> dict[str, str]:
        """Headers for an authorised FHIR JSON request to this server."""
        return {"Authorization": f"Bearer {self.token}", "Accept": FHIR_JSON}

    def start(self) -> Self:
        """Start node and wait for the line naming the port; a missing install fails the test."""
        node = shutil.which("node")
        if node is None or not (PACKAGE_DIR / "node_modules" / "@medplum" / "fhir-router").is_dir():
            pytest.fail(f"Medplum is not installed: run `npm ci --prefix {PACKAGE_DIR}` (the README's test "
                        "command does)", pytrace=False)
        # Node 20 keeps the global WebSocket that Medplum's core expects behind a flag.
        self._process = subprocess.Popen(
            [node, "--experimental-websocket", str(PACKAGE_DIR / "server.js")], cwd=PACKAGE_DIR, text=True,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, "PORT": "0", "TOKEN": self.token})
        first_line: list[str] = []
        reader = threading.Thread(target=lambda: first_line.append(self._process.stdout.readline()),  # type: ignore[union-attr]
                                  daemon=True)
        reader.start()
        reader.join(STARTUP_SECONDS)
        if not first_line or not first_line[0].strip():
            self._process.kill()
            _, errors = self._process.communicate(timeout=10)
            raise FhirServerError(f"Medplum did not start within {STARTUP_SECONDS:.0f} s: {errors[-2000:]}")
        self._port = int(json.loads(first_line[0])["port"])
        return self

    def stop(self) -> None:
        """Kill the server; afterwards connections to ``base_url`` are refused. Idempotent."""
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.communicate(timeout=10)

    def load(self, bundle: dict[str, Any]) -> dict[str, Any]:
        """POST a transaction Bundle and return the response Bundle."""
        return load_bundle(self.base_url, self.auth_headers, bundle)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
