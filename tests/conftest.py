"""Shared fixtures: the real FHIR server (sekmet) and a Needlecheck app per test.

The service under test runs with the sample data sets of ``tests/data`` installed (fictitious rows in
CMS's layouts), as a deployment runs with its official files: the rules that need them check instead
of reporting that they could not. Tests of the not-installed path set their own directory.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from needlecheck.cds_hooks.app import create_app
from needlecheck.cds_hooks.settings import Settings
from tests.support.browser import browser  # noqa: F401  (one Chromium for the whole session)
from tests.support.card_conformance import assert_conformant_response
from tests.support.fixtures_fhir import fhir_server, fresh_fhir_server, medplum_server  # noqa: F401
from tests.support.fixtures_postgres import postgres_server, postgres_url  # noqa: F401

REPO = Path(__file__).resolve().parent.parent
TEST_DATASETS = REPO / "tests" / "data"
# Read when an app is created; ``needlecheck serve`` subprocesses inherit it too.
os.environ["NEEDLECHECK_DATASETS_DIR"] = str(TEST_DATASETS)
# Derived tables (the ICD-10-CM release) are built once per checkout, not in the user's home cache.
os.environ.setdefault("NEEDLECHECK_CACHE_DIR", str(REPO / ".cache"))
FIXTURES = REPO / "fixtures"


@pytest.fixture
def app(tmp_path: Path) -> Iterator[Flask]:
    """A service with its own data directory."""
    # Open mode (no trusted clients); the test FHIR server speaks plain http.
    application = create_app(Settings(data_dir=tmp_path / "data", allow_http=True))
    yield application
    application.extensions["needlecheck.pool"].shutdown(wait=False)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """A test client whose JSON responses are checked for CDS Hooks card conformance."""
    test_client = app.test_client()
    original = test_client.open

    def open_and_check(*args: object, **kwargs: object):  # type: ignore[no-untyped-def]
        response = original(*args, **kwargs)
        body = response.get_json(silent=True)
        if response.status_code == 200 and isinstance(body, dict) and "cards" in body:
            assert_conformant_response(body)
        return response

    test_client.open = open_and_check  # type: ignore[method-assign]
    return test_client
