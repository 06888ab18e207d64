"""Feedback and the audit log, on both backends: SQLite (the default) and a real PostgreSQL.

Every test that takes ``backend`` runs once per backend. The PostgreSQL server is started by the suite
(``tests/support/postgres_server.py``); if it cannot start, these tests fail rather than skip.
"""

from __future__ import annotations

import datetime as dt
import json
import socket
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import psycopg
import pytest
from flask import Flask
from flask.testing import FlaskClient

from needlecheck.cds_hooks.app import create_app
from needlecheck.cds_hooks.audit import AuditRecord, open_seconds
from needlecheck.cds_hooks.cli import main
from needlecheck.cds_hooks.feedback import FeedbackItem
from needlecheck.cds_hooks.postgres_store import PostgresStore
from needlecheck.cds_hooks.settings import Settings, load_settings
from needlecheck.cds_hooks.sqlite_store import SqliteStore
from needlecheck.cds_hooks.store import Store, StoreUnavailable, describe_storage, open_store
from needlecheck.cds_hooks.trust_settings import TrustedClient
from tests.support.card_conformance import assert_conformant_response
from tests.support.client_tokens import claims, ec_key, mint

REQUESTS = Path(__file__).resolve().parent.parent / "fixtures" / "requests"
ORDER_SIGN = "/cds-services/dry-needling-order-sign"
CLAIM_CREATE = "/cds-services/dry-needling-claim-create"
CARD = "744c8a4b-6130-5062-b4f1-d392365452f8"


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    """Settings that select one backend: SQLite in a temporary data directory, or a fresh PostgreSQL database."""
    url = request.getfixturevalue("postgres_url") if request.param == "postgres" else None
    return Settings(data_dir=tmp_path / "data", database_url=url, allow_http=True)  # the FHIR server in a test


@pytest.fixture
def store(backend: Settings) -> Iterator[Store]:
    """An open store of that backend."""
    opened = open_store(backend)
    yield opened
    opened.close()


@pytest.fixture
def served(backend: Settings) -> Iterator[Flask]:
    """The service on that backend."""
    application = create_app(backend)
    yield application
    application.extensions["needlecheck.pool"].shutdown(wait=False)
    application.extensions["needlecheck.store"].close()


@pytest.fixture
def http(served: Flask) -> FlaskClient:
    """A test client of the service."""
    return served.test_client()


def overridden(card: str = CARD, at: str = "2026-03-02T10:01:00Z", service_comment: str = "see note") -> FeedbackItem:
    """An ``overridden`` feedback item."""
    reason = json.dumps({"userComment": service_comment}, sort_keys=True)
    return FeedbackItem(card, "overridden", at, (), reason)


def accepted(card: str = CARD, at: str = "2026-03-02T10:00:00Z") -> FeedbackItem:
    """An ``accepted`` feedback item."""
    return FeedbackItem(card, "accepted", at, ("b7a4fd0e-3a0e-5d84-9a4d-0d6c1a0f1b52",), None)


def all_rows(settings: Settings) -> str:
    """Every row of every table the store wrote, as one text, read with the database's own client library."""
    if settings.database_url:
        with psycopg.connect(settings.database_url) as connection:
            tables = [row[0] for row in connection.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public'").fetchall()]
            rows = [row for table in tables for row in connection.execute(f"SELECT * FROM {table}").fetchall()]
    else:
        import sqlite3

        with sqlite3.connect(settings.sqlite_database) as connection:
            tables = [row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
            rows = [row for table in tables for row in connection.execute(f"SELECT * FROM {table}").fetchall()]
    assert set(tables) >= {"feedback", "audit"}
    return "\n".join(repr(row) for row in rows)


# ----------------------------------------------------------------------------------------------- feedback


def test_feedback_is_stored_once_and_retries_are_idempotent(store: Store) -> None:
    assert store.save_feedback("dry-needling-order-sign", [accepted(), overridden()]) == 2
    assert store.save_feedback("dry-needling-order-sign", [accepted(), overridden()]) == 0
    assert store.save_feedback("dry-needling-order-sign", [overridden(), overridden(at="2026-03-02T11:00:00Z")]) == 1
    assert store.count_feedback() == 3


def test_a_batch_that_repeats_an_item_stores_it_once(store: Store) -> None:
    assert store.save_feedback("dry-needling-order-sign", [accepted(), accepted(), accepted()]) == 1
    assert store.count_feedback() == 1


def test_the_key_is_service_card_outcome_and_timestamp(store: Store) -> None:
    assert store.save_feedback("dry-needling-order-sign", [accepted()]) == 1
    assert store.save_feedback("dry-needling-claim-create", [accepted()]) == 1
    assert store.save_feedback("dry-needling-order-sign", [accepted(card="another-card")]) == 1
    assert store.save_feedback("dry-needling-order-sign", [overridden(at="2026-03-02T10:00:00Z")]) == 1
    assert store.save_feedback("dry-needling-order-sign", [accepted(at="2026-03-02T10:00:01Z")]) == 1
    # What is not in the key does not make a repeat new: a retry with another comment is the same feedback.
    assert store.save_feedback("dry-needling-order-sign", [overridden(at="2026-03-02T10:00:00Z",
                                                                      service_comment="other")]) == 0
    assert store.count_feedback("dry-needling-order-sign") == 4
    assert store.count_feedback("dry-needling-claim-create") == 1


def test_schema_creation_is_idempotent_and_keeps_the_data(backend: Settings, store: Store) -> None:
    store.save_feedback("dry-needling-order-sign", [accepted()])
    again = open_store(backend)
    try:
        assert again.count_feedback() == 1
        assert again.save_feedback("dry-needling-order-sign", [accepted()]) == 0
    finally:
        again.close()


def test_feedback_over_http_is_stored_once(http: FlaskClient, served: Flask) -> None:
    body = {"feedback": [{"card": CARD, "outcome": "overridden", "outcomeTimestamp": "2026-03-02T10:01:00+00:00",
                          "overrideReason": {"userComment": "see note"}}]}
    answers = [http.post(f"{ORDER_SIGN}/feedback", json=body).get_json() for _ in range(3)]
    assert answers == [{"received": 1, "stored": 1}, {"received": 1, "stored": 0}, {"received": 1, "stored": 0}]
    assert served.extensions["needlecheck.store"].count_feedback() == 1


def test_an_unavailable_database_is_503_so_the_client_retries(http: FlaskClient, served: Flask,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    def unavailable(*_: Any) -> int:
        raise StoreUnavailable("database is locked")

    monkeypatch.setattr(served.extensions["needlecheck.store"], "save_feedback", unavailable)
    response = http.post(f"{ORDER_SIGN}/feedback", json={"feedback": [
        {"card": CARD, "outcome": "overridden", "outcomeTimestamp": "2026-03-02T10:01:00Z",
         "overrideReason": {"userComment": "x"}}]})
    assert response.status_code == 503
    assert response.get_json()["issue"][0]["code"] == "transient"


def test_health_is_503_while_the_database_is_unavailable(http: FlaskClient, served: Flask,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    assert http.get("/healthz").status_code == 200

    def unavailable() -> None:
        raise StoreUnavailable("PostgreSQL: OperationalError")

    monkeypatch.setattr(served.extensions["needlecheck.store"], "check", unavailable)
    assert http.get("/healthz").status_code == 503


# -------------------------------------------------------------------------------------------------- audit


def test_audit_records_round_trip_newest_first(store: Store) -> None:
    first = AuditRecord(dt.datetime(2026, 3, 2, 10, 0, 0, 123456, tzinfo=dt.UTC), "dry-needling-order-sign",
                        "order-sign", "0a4f1869-6743-49d1-9efd-8fc16acdd8eb", "https://ehr.example.org", 200, None,
                        ("DN-CODE-001",), ("c1", "c2"), ("s1",), 12.5, 3.25, 2)
    second = AuditRecord(dt.datetime(2026, 3, 2, 10, 0, 1, tzinfo=dt.UTC), "nope", None, None, "anonymous", 404,
                         "not-found")
    store.record_invocation(first)
    store.record_invocation(second)
    assert store.invocations() == [second, first]
    assert store.invocations(limit=1) == [second]


def load(name: str) -> dict[str, Any]:
    """A request fixture."""
    return json.loads((REQUESTS / name).read_text(encoding="utf-8"))


def test_a_hook_call_is_audited_with_its_rules_cards_and_durations(http: FlaskClient, served: Flask) -> None:
    request = load("order-sign/code001-20561-two-muscles.json")
    response = http.post(ORDER_SIGN, json=request)
    assert response.status_code == 200
    body = response.get_json()
    assert_conformant_response(body)
    [record] = served.extensions["needlecheck.store"].invocations()
    assert (record.service_id, record.hook, record.hook_instance, record.client_id, record.http_status) == (
        "dry-needling-order-sign", "order-sign", request["hookInstance"], "anonymous", 200)
    assert record.problem is None
    assert "DN-CODE-001" in record.rule_ids
    assert record.rule_ids == tuple(sorted({card["extension"]["org.needlecheck.rule-id"] for card in body["cards"]}))
    assert record.card_uuids == tuple(card["uuid"] for card in body["cards"])
    suggestions = tuple(s["uuid"] for card in body["cards"] for s in card.get("suggestions", []))
    assert suggestions and record.suggestion_uuids == suggestions
    assert record.total_ms is not None and record.total_ms > 0
    assert (record.fhir_requests, record.fhir_ms) == (0, 0.0)  # full prefetch: the FHIR server was not asked


def test_the_authenticated_client_is_recorded_and_a_refused_call_too(backend: Settings) -> None:
    key = ec_key("ehr-es384")
    iss, base = "https://ehr.example.org", "https://cds.example.org"
    settings = replace(backend, trusted_clients=(TrustedClient(iss, keys=(key.public_jwk,)),), public_base_url=base)
    application = create_app(settings)
    http = application.test_client()
    request = load("order-sign/code001-20561-two-muscles.json")
    token = mint(key, claims(iss, base + ORDER_SIGN))
    answered = http.post(ORDER_SIGN, json=request, headers={"Authorization": f"Bearer {token}"})
    assert answered.status_code == 200
    assert http.post(ORDER_SIGN, json=request, headers={"Authorization": f"Bearer {token}"}).status_code == 401
    refused, accepted = application.extensions["needlecheck.store"].invocations()
    assert (accepted.client_id, accepted.http_status) == (iss, 200)
    assert accepted.card_uuids == tuple(card["uuid"] for card in answered.get_json()["cards"])
    assert (refused.client_id, refused.http_status, refused.problem) == ("anonymous", 401, "login")
    assert token not in all_rows(settings)
    application.extensions["needlecheck.store"].close()


@pytest.mark.parametrize(("path", "body", "status", "problem", "hook_instance"), [
    (ORDER_SIGN, b"{not json", 400, "structure", None),
    (ORDER_SIGN, {"hook": "order-sign", "hookInstance": "h-1", "context": {}}, 400, "invalid@context.userId", "h-1"),
    (ORDER_SIGN, {"hook": "claim-create", "hookInstance": "h-2"}, 400, "invalid@hook", "h-2"),
    ("/cds-services/nope", {"hook": "order-sign", "hookInstance": "h-3"}, 404, "not-found", None),
    (CLAIM_CREATE, "claim-create/server-referenced-procedure.json", 412, "not-found@context.claim.procedure", None),
])
def test_a_failed_hook_call_is_audited_with_what_is_known(http: FlaskClient, served: Flask, path: str,
                                                          body: Any, status: int, problem: str,
                                                          hook_instance: str | None) -> None:
    if isinstance(body, str):
        body = load(body)
        body.pop("fhirServer", None)
        body.pop("fhirAuthorization", None)
        hook_instance = body["hookInstance"]
    data = body if isinstance(body, bytes) else json.dumps(body)
    response = http.post(path, data=data, content_type="application/json")
    assert response.status_code == status
    [record] = served.extensions["needlecheck.store"].invocations()
    assert (record.http_status, record.problem, record.hook_instance) == (status, problem, hook_instance)
    assert record.service_id == path.rsplit("/", 1)[1]
    assert record.hook == {"dry-needling-order-sign": "order-sign", "dry-needling-claim-create": "claim-create"}.get(
        record.service_id)
    assert (record.rule_ids, record.card_uuids) == ((), ())


def test_free_text_where_an_identifier_belongs_is_not_recorded(http: FlaskClient, served: Flask) -> None:
    http.post(ORDER_SIGN, json={"hook": "order-sign", "hookInstance": "Rosa Delgado, DOB 1971-04-02"})
    [record] = served.extensions["needlecheck.store"].invocations()
    assert record.hook_instance is None


def test_discovery_and_feedback_calls_are_not_hook_invocations(http: FlaskClient, served: Flask) -> None:
    http.get("/cds-services")
    http.post(f"{ORDER_SIGN}/feedback", json={"feedback": []})
    assert served.extensions["needlecheck.store"].invocations() == []


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_no_phi_and_no_secret_reaches_the_database(backend: Settings, http: FlaskClient) -> None:
    patient_id, access_token = "phi-patient-93f1c2", "fhir-access-token-5f2a9d"
    jwt = "eyJhbGciOiJFUzM4NCJ9.eyJpc3MiOiJodHRwczovL2VociJ9.c2lnbmF0dXJlLTdlNGI"
    request = json.loads(json.dumps(load("order-sign/code001-20561-two-muscles.json")).replace("nc-pat-1", patient_id))
    request["prefetch"].pop("priorProcedures")  # fetched from the FHIR server (which is down), with the token
    request["fhirServer"] = f"http://127.0.0.1:{_closed_port()}/fhir"
    request["fhirAuthorization"] = {"access_token": access_token, "token_type": "Bearer", "expires_in": 300,
                                    "scope": "patient/*.read", "subject": "needlecheck"}
    headers = {"Authorization": f"Bearer {jwt}"}
    answered = http.post(ORDER_SIGN, json=request, headers=headers)
    assert answered.status_code == 200
    broken = dict(request, context=dict(request["context"], userId=None))
    assert http.post(ORDER_SIGN, json=broken, headers=headers).status_code == 400
    http.post(f"{ORDER_SIGN}/feedback", headers=headers, json={"feedback": [
        {"card": answered.get_json()["cards"][0]["uuid"], "outcome": "overridden",
         "outcomeTimestamp": "2026-03-02T10:01:00Z", "overrideReason": {"userComment": "fine"}}]})

    stored = all_rows(backend)
    assert request["hookInstance"] in stored  # the rows were read
    for secret in (patient_id, access_token, jwt, "Delgado", "NC0001001"):
        assert secret not in stored
    records = open_store(backend).invocations()
    assert [record.http_status for record in records] == [400, 200]
    assert records[1].fhir_requests and records[1].fhir_ms is not None  # the FHIR server was asked


def test_an_audit_write_that_fails_does_not_fail_the_call(http: FlaskClient, served: Flask,
                                                          monkeypatch: pytest.MonkeyPatch,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    def unavailable(_: AuditRecord) -> None:
        raise StoreUnavailable("database is locked")

    monkeypatch.setattr(served.extensions["needlecheck.store"], "record_invocation", unavailable)
    response = http.post(ORDER_SIGN, json=load("order-sign/code001-20561-two-muscles.json"))
    assert response.status_code == 200
    assert "audit record" in caplog.text and "StoreUnavailable" in caplog.text


def test_needlecheck_audit_prints_the_log_oldest_first(backend: Settings, http: FlaskClient, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    request = load("order-sign/code001-20561-two-muscles.json")
    http.post(ORDER_SIGN, json=request)
    http.post("/cds-services/nope", json=request)
    config = tmp_path / "needlecheck.toml"
    config.write_text(f"data_dir = {json.dumps(str(backend.data_dir))}\n"
                      + (f"database_url = {json.dumps(backend.database_url)}\n" if backend.database_url else ""))
    assert main(["audit", "--config", str(config)]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(line["serviceId"], line["httpStatus"]) for line in lines] == [("dry-needling-order-sign", 200),
                                                                           ("nope", 404)]
    assert lines[0]["hookInstance"] == request["hookInstance"] and lines[0]["recordedAt"].endswith("Z")
    assert main(["audit", "--limit", "1", "--config", str(config)]) == 0
    assert [json.loads(line)["serviceId"] for line in capsys.readouterr().out.splitlines()] == ["nope"]


# ------------------------------------------------------------------------------------------ configuration


def test_fhir_wait_counts_overlapping_requests_once() -> None:
    assert open_seconds([(0.0, 1.0), (0.5, 2.0), (3.0, 4.0), (3.2, 3.5)]) == pytest.approx(3.0)
    assert open_seconds([]) == 0.0


def test_database_url_comes_from_the_config_file_or_the_environment(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NEEDLECHECK_DATABASE_URL", raising=False)
    assert Settings().database_url is None
    config = tmp_path / "needlecheck.toml"
    config.write_text('database_url = "postgresql://needlecheck:s3cret@db.internal:5432/needlecheck"\n')
    settings = load_settings(config)
    assert settings.database_url == "postgresql://needlecheck:s3cret@db.internal:5432/needlecheck"
    assert "s3cret" not in repr(settings)
    assert describe_storage(settings) == "PostgreSQL needlecheck on db.internal:5432"
    monkeypatch.setenv("NEEDLECHECK_DATABASE_URL", "postgresql:///from-env")
    assert Settings().database_url == "postgresql:///from-env"


def test_sqlite_is_the_default_and_lives_in_the_data_directory(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NEEDLECHECK_DATABASE_URL", raising=False)
    store = open_store(Settings(data_dir=tmp_path / "data"))
    assert isinstance(store, SqliteStore)
    assert store.path == tmp_path / "data" / "needlecheck.sqlite3"
    import sqlite3

    with sqlite3.connect(store.path) as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_an_unreachable_postgresql_is_reported_without_the_password(tmp_path: Path) -> None:
    url = f"postgresql://needlecheck:s3cret@/needlecheck?host={tmp_path}&port=5999"
    with pytest.raises(StoreUnavailable) as raised:
        PostgresStore(url, timeout_seconds=1)
    assert "s3cret" not in str(raised.value)
