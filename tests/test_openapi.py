"""The OpenAPI description: served as checked in, in step with the service declarations, and the service
conforms to it under schemathesis (in-process over WSGI, derandomized, bounded examples)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import schemathesis
import yaml
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from needlecheck.cds_hooks.app import create_app
from needlecheck.cds_hooks.fhir_client import FhirClient, FhirUnavailable
from needlecheck.cds_hooks.openapi import openapi_json_text
from needlecheck.cds_hooks.services import SERVICES
from needlecheck.cds_hooks.settings import Settings

CHECKED_IN = Path(__file__).resolve().parent.parent / "cds_hooks" / "openapi.yaml"


def checked_in() -> dict[str, Any]:
    """The document in the repository."""
    document: dict[str, Any] = yaml.safe_load(CHECKED_IN.read_text(encoding="utf-8"))
    return document


def test_the_served_document_is_the_checked_in_one(client: FlaskClient) -> None:
    as_json = client.get("/openapi.json")
    as_yaml = client.get("/openapi.yaml")

    assert as_json.status_code == 200
    assert as_json.mimetype == "application/json"
    assert as_json.get_json() == checked_in()
    assert as_yaml.status_code == 200
    assert as_yaml.get_data(as_text=True) == CHECKED_IN.read_text(encoding="utf-8")


def test_service_ids_and_hooks_match_the_service_declarations() -> None:
    document = checked_in()
    schemas = document["components"]["schemas"]
    ids = set(SERVICES)
    hooks = {service.hook for service in SERVICES.values()}

    assert set(document["components"]["parameters"]["ServiceId"]["schema"]["enum"]) == ids
    assert set(schemas["ServiceDescription"]["properties"]["id"]["enum"]) == ids
    assert set(schemas["ServiceDescription"]["properties"]["hook"]["enum"]) == hooks
    assert set(schemas["CdsRequest"]["properties"]["hook"]["enum"]) == hooks


def test_the_bearer_scheme_and_401_are_declared_for_service_and_feedback_calls() -> None:
    document = checked_in()
    scheme = document["components"]["securitySchemes"]["cdsClientJwt"]

    assert (scheme["type"], scheme["scheme"], scheme["bearerFormat"]) == ("http", "bearer", "JWT")
    for path in ("/cds-services/{service_id}", "/cds-services/{service_id}/feedback"):
        operation = document["paths"][path]["post"]
        assert {"cdsClientJwt": []} in operation["security"]
        assert "401" in operation["responses"]


# ------------------------------------------------------------------------------------------- schemathesis


# The schema is read at import time (schemathesis makes one test per operation when the module is collected), the
# app only when the tests run: collecting the suite creates no data directory.
schema = schemathesis.openapi.from_dict(json.loads(openapi_json_text()))


@pytest.fixture(scope="module")
def api_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flask]:
    """The service in its own data directory; generated ``fhirServer`` URLs reach no network."""

    def no_network(self: FhirClient, query: str) -> dict[str, Any]:
        raise FhirUnavailable("no network in this test")

    application = create_app(replace(Settings(), data_dir=tmp_path_factory.mktemp("openapi") / "data"))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(FhirClient, "get", no_network)
        yield application
    application.extensions["needlecheck.pool"].shutdown(wait=False)


@schema.parametrize()
@settings(max_examples=40, derandomize=True, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.filter_too_much, HealthCheck.data_too_large])
def test_the_service_conforms_to_its_openapi_description(case: schemathesis.Case, api_app: Flask) -> None:
    # No 5xx, only declared status codes and content types, and every body valid against its schema.
    case.call_and_validate(app=api_app, checks=[not_a_server_error, status_code_conformance, content_type_conformance,
                                   response_schema_conformance])
