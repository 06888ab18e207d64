"""Shared fixtures: the real FHIR server (sekmet) and a Needlecheck app per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from cds_hooks.app import create_app
from cds_hooks.settings import Settings
from tests.support.card_conformance import assert_conformant_response
from tests.support.fixtures_fhir import fhir_server, fresh_fhir_server  # noqa: F401
from tests.support.fixtures_postgres import postgres_server, postgres_url  # noqa: F401

REPO = Path(__file__).resolve().parent.parent
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
