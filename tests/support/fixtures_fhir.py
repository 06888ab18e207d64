"""pytest fixtures that provide a real FHIR server (sekmet, in-process) to the tests.

Import them into ``tests/conftest.py``::

    from tests.support.fixtures_fhir import fhir_server, fresh_fhir_server  # noqa: F401

* ``fhir_server`` (session scope): one server for the whole run, loaded once with the shared
  fixture Bundle ``fixtures/fhir/transaction-bundle.json``. Treat it as read-only: do not stop it
  and do not write to it, or later tests see the change.
* ``medplum_server`` (session scope): Medplum's FHIR router, loaded with the same Bundle, read-only too;
  the FHIR-fallback tests run against both servers.
* ``fresh_fhir_server`` (function scope): a new, empty server per test, stopped afterwards. Use it
  to load test-specific data or to call ``.stop()`` and test the "FHIR server is down" path.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.fhir_server import FhirTestServer
from tests.support.medplum_server import MedplumTestServer

__all__ = ["FHIR_BUNDLE_PATH", "fhir_server", "fresh_fhir_server", "medplum_server", "read_bundle"]

#: The shared transaction Bundle the session server is loaded with (repo-relative: fixtures/fhir/).
FHIR_BUNDLE_PATH: Path = Path(__file__).resolve().parents[2] / "fixtures" / "fhir" / "transaction-bundle.json"


def read_bundle(path: Path) -> dict[str, Any]:
    """Read a FHIR Bundle from a JSON file, failing the test with a clear message if it is absent."""
    if not path.is_file():
        pytest.fail(f"FHIR fixture Bundle not found: {path}", pytrace=False)
    bundle: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return bundle


@pytest.fixture(scope="session")
def fhir_server() -> Iterator[FhirTestServer]:
    """A running FHIR server shared by the whole session, loaded with ``FHIR_BUNDLE_PATH``."""
    # Read the module attribute at call time (not as a default argument) so it can be patched.
    bundle = read_bundle(FHIR_BUNDLE_PATH)
    with FhirTestServer() as server:
        server.load(bundle)
        yield server


@pytest.fixture
def fresh_fhir_server() -> Iterator[FhirTestServer]:
    """A newly started, empty FHIR server for one test; stopped afterwards (even if the test stopped it)."""
    with FhirTestServer() as server:
        yield server


@pytest.fixture(scope="session")
def medplum_server() -> Iterator[MedplumTestServer]:
    """Medplum's FHIR server shared by the whole session, loaded with ``FHIR_BUNDLE_PATH``."""
    with MedplumTestServer() as server:
        server.load(read_bundle(FHIR_BUNDLE_PATH))
        yield server
