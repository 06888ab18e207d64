"""Health endpoints: ``/livez`` answers without the database, ``/readyz`` is 503 naming the failed check while
the database is unreachable or the rules cannot load, and lists the data sets, installed or missing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from needlecheck.cds_hooks.app import create_app
from needlecheck.cds_hooks.postgres_store import PostgresStore
from needlecheck.cds_hooks.settings import Settings
from needlecheck.cds_hooks.store import StoreUnavailable
from needlecheck.mappings import sources
from needlecheck.mappings.datasets import dataset_specs
from tests.support.postgres_server import start_postgres


def failed_checks(body: dict[str, Any]) -> list[str]:
    """The names of the failed checks in a 503 OperationOutcome."""
    assert body["resourceType"] == "OperationOutcome"
    return [issue["details"]["text"] for issue in body["issue"]]


def test_livez_answers_without_touching_the_database(client: FlaskClient, app: Flask,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    def unavailable() -> None:
        raise StoreUnavailable("database is locked")

    monkeypatch.setattr(app.extensions["needlecheck.store"], "check", unavailable)
    response = client.get("/livez")
    assert (response.status_code, response.get_json()) == (200, {"status": "ok"})
    assert client.get("/healthz").status_code == 503  # /healthz keeps reading the database, as documented
    readiness = client.get("/readyz")
    assert readiness.status_code == 503
    assert failed_checks(readiness.get_json()) == ["database"]
    assert "database is locked" in readiness.get_json()["issue"][0]["diagnostics"]


def test_readyz_lists_its_checks_and_every_data_set(client: FlaskClient) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "ready"
    assert body["checks"] == {"rules": "ok", "database": "ok"}
    assert {entry["name"] for entry in body["dataSets"]} == set(dataset_specs())
    assert all(entry["installed"] for entry in body["dataSets"])  # the suite installs the samples
    assert body["missingDataSets"] == []
    ptp = next(entry for entry in body["dataSets"] if entry["name"] == "ncci-ptp-practitioner")
    assert "DN-NCCI-001" in ptp["rules"]


def test_missing_data_sets_are_listed_and_do_not_make_the_instance_unready(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEEDLECHECK_DATASETS_DIR", str(tmp_path / "none-installed"))
    application = create_app(Settings(data_dir=tmp_path / "data"))
    try:
        response = application.test_client().get("/readyz")
    finally:
        application.extensions["needlecheck.pool"].shutdown(wait=False)
    assert response.status_code == 200
    body = response.get_json()
    assert sorted(body["missingDataSets"]) == sorted(dataset_specs())
    mue = next(entry for entry in body["dataSets"] if entry["name"] == "ncci-mue-practitioner")
    assert mue == {"name": "ncci-mue-practitioner", "installed": False, "rules": ["DN-NCCI-002"]}


def test_readyz_is_503_when_the_policy_sources_are_not_loaded(client: FlaskClient,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    # As in a wheel that shipped without mappings/policy_sources/: the rules cite sources nobody loaded.
    monkeypatch.setattr(sources, "load_source_directory", lambda *_: {})
    sources.policy_sources.cache_clear()
    try:
        response = client.get("/readyz")
    finally:
        monkeypatch.undo()
        sources.policy_sources.cache_clear()
    assert response.status_code == 503
    assert response.mimetype == "application/fhir+json"
    [issue] = response.get_json()["issue"]
    assert issue["details"]["text"] == "rules"
    assert "policy source" in issue["diagnostics"]
    assert client.get("/readyz").status_code == 200  # loaded again


@pytest.fixture
def own_postgres() -> Iterator[Any]:
    """A PostgreSQL server of this test's own, which it may stop (the suite's shared one must keep running)."""
    server = start_postgres()
    yield server
    server.stop()


def test_readyz_is_503_while_postgresql_is_down(own_postgres: Any, tmp_path: Path) -> None:
    url = own_postgres.create_database()
    application = create_app(Settings(data_dir=tmp_path / "data", database_url=url))
    # A short pool timeout keeps the test quick; the service's own is 10 s (a probe times out sooner anyway).
    application.extensions["needlecheck.store"].close()
    application.extensions["needlecheck.store"] = PostgresStore(url, timeout_seconds=2.0)
    http = application.test_client()
    try:
        assert http.get("/readyz").status_code == 200
        own_postgres.stop()
        response = http.get("/readyz")
        assert response.status_code == 503
        assert failed_checks(response.get_json()) == ["database"]
        assert response.get_json()["issue"][0]["code"] == "transient"
        assert http.get("/livez").status_code == 200
    finally:
        application.extensions["needlecheck.pool"].shutdown(wait=False)
        application.extensions["needlecheck.store"].close()
