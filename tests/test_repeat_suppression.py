"""Repeat suppression on both backends: an overridden card stays away for N days, per patient and finding."""

from __future__ import annotations

import copy
import datetime as dt
import json
import stat
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import psycopg
import pytest
from flask import Flask

from needlecheck.cds_hooks.app import create_app
from needlecheck.cds_hooks.audit_writer import QueuedAuditStore, queue_audit_writes
from needlecheck.cds_hooks.settings import Settings
from needlecheck.cds_hooks.suppression import SECRET_FILE, load_or_create_secret
from needlecheck.plugin.context import RuleOptions

REQUESTS = Path(__file__).resolve().parent.parent / "fixtures" / "requests"
ORDER_SIGN = "/cds-services/dry-needling-order-sign"
SECRET = "a-test-secret-of-at-least-32-characters"


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    url = request.getfixturevalue("postgres_url") if request.param == "postgres" else None
    # Good-practice documentation on: its DN-DOC-010 card is the other finding that must still show.
    return Settings(data_dir=tmp_path / "data", database_url=url, suppress_overridden_days=30,
                    suppression_secret=SECRET, rule_options=RuleOptions(good_practice_elements=True))


@pytest.fixture(params=["written-in-request", "queued"])
def served(request: pytest.FixtureRequest, backend: Settings) -> Iterator[Flask]:
    # "queued": audit records and shown cards go through the writer thread, as under needlecheck serve; feedback
    # waits for the worker's queued cards, so an override is seen by the worker's next call.
    application = create_app(backend)
    if request.param == "queued":
        queue_audit_writes(application, 1000)
    yield application
    application.extensions["needlecheck.pool"].shutdown(wait=False)
    application.extensions["needlecheck.store"].close()


def order(patient: str = "nc-pat-1") -> dict[str, Any]:
    request = json.loads((REQUESTS / "order-sign/code001-20561-two-muscles.json").read_text(encoding="utf-8"))
    request = copy.deepcopy(request)
    request["hookInstance"] = str(uuid.uuid4())
    request["context"]["patientId"] = patient
    return request


def card_of(body: dict[str, Any], rule_id: str) -> dict[str, Any] | None:
    return next((card for card in body["cards"]
                 if card.get("extension", {}).get("org.needlecheck.rule-id") == rule_id), None)


def override(application: Flask, card: dict[str, Any], when: dt.datetime | None = None) -> None:
    moment = (when or dt.datetime.now(dt.UTC)).isoformat().replace("+00:00", "Z")
    answer = application.test_client().post(f"{ORDER_SIGN}/feedback", json={"feedback": [{
        "card": card["uuid"], "outcome": "overridden", "outcomeTimestamp": moment,
        "overrideReason": {"reason": {"system": "urn:needlecheck:override-reason", "code": "clinical-judgement"}}}]})
    assert answer.status_code == 200 and answer.get_json()["stored"] == 1


def test_an_overridden_card_is_not_shown_again_for_the_same_patient_and_finding(served: Flask) -> None:
    http = served.test_client()
    first = http.post(ORDER_SIGN, json=order()).get_json()
    card = card_of(first, "DN-CODE-001")
    assert card is not None
    override(served, card)
    again = http.post(ORDER_SIGN, json=order()).get_json()
    assert card_of(again, "DN-CODE-001") is None
    assert card_of(again, "DN-DOC-010") is not None  # other findings still show
    other_patient = http.post(ORDER_SIGN, json=order("nc-pat-2")).get_json()
    assert card_of(other_patient, "DN-CODE-001") is not None
    latest = served.extensions["needlecheck.store"].invocations(2)[1]  # newest first: the second call
    assert latest.suppressed_rule_ids == ("DN-CODE-001",)
    assert latest.as_json()["suppressedCards"] == 1


def test_a_different_finding_of_the_same_rule_is_shown(served: Flask) -> None:
    http = served.test_client()
    override(served, card_of(http.post(ORDER_SIGN, json=order()).get_json(), "DN-CODE-001") or {})
    changed = order()
    changed["context"]["draftOrders"]["entry"][0]["resource"]["occurrenceDateTime"] = "2026-05-04T14:00:00-06:00"
    assert card_of(http.post(ORDER_SIGN, json=changed).get_json(), "DN-CODE-001") is not None


def test_an_override_older_than_n_days_no_longer_suppresses(served: Flask) -> None:
    http = served.test_client()
    card = card_of(http.post(ORDER_SIGN, json=order()).get_json(), "DN-CODE-001")
    assert card is not None
    override(served, card, dt.datetime.now(dt.UTC) - dt.timedelta(days=31))
    assert card_of(http.post(ORDER_SIGN, json=order()).get_json(), "DN-CODE-001") is not None


def test_suppression_holds_across_instances_sharing_the_database(backend: Settings, tmp_path: Path) -> None:
    # One SQLite file: two apps stand for two workers of one instance; PostgreSQL: two instances.
    other = backend if backend.database_url is None else replace(backend, data_dir=tmp_path / "other-instance")
    first, second = create_app(backend), create_app(other)
    try:
        card = card_of(first.test_client().post(ORDER_SIGN, json=order()).get_json(), "DN-CODE-001")
        assert card is not None
        override(second, card)
        assert card_of(second.test_client().post(ORDER_SIGN, json=order()).get_json(), "DN-CODE-001") is None
        assert card_of(first.test_client().post(ORDER_SIGN, json=order()).get_json(), "DN-CODE-001") is None
    finally:
        for application in (first, second):
            application.extensions["needlecheck.pool"].shutdown(wait=False)
            application.extensions["needlecheck.store"].close()


def test_off_by_default_yet_cards_are_recorded(backend: Settings) -> None:
    application = create_app(replace(backend, suppress_overridden_days=0))
    try:
        http = application.test_client()
        card = card_of(http.post(ORDER_SIGN, json=order()).get_json(), "DN-CODE-001")
        assert card is not None
        override(application, card)
        assert card_of(http.post(ORDER_SIGN, json=order()).get_json(), "DN-CODE-001") is not None
        data = application.extensions["needlecheck.store"].report_data(None, None)
        assert card["uuid"] in {row.card_uuid for row in data.issued}
    finally:
        application.extensions["needlecheck.pool"].shutdown(wait=False)
        application.extensions["needlecheck.store"].close()


def all_text(settings: Settings) -> str:
    if settings.database_url:
        with psycopg.connect(settings.database_url) as connection:
            rows = connection.execute("SELECT * FROM card_issued").fetchall()
            rows += connection.execute("SELECT * FROM audit").fetchall()
    else:
        import sqlite3

        connection = sqlite3.connect(settings.sqlite_database)
        rows = connection.execute("SELECT * FROM card_issued").fetchall()
        rows += connection.execute("SELECT * FROM audit").fetchall()
        connection.close()
    return repr(rows)


def test_no_patient_identifier_is_stored_in_clear(served: Flask, backend: Settings) -> None:
    patient = "patient-7f3c91-unique"
    served.test_client().post(ORDER_SIGN, json=order(patient))
    store = served.extensions["needlecheck.store"]
    assert not isinstance(store, QueuedAuditStore) or store.flush()  # read below over a connection of its own
    text = all_text(backend)
    assert "DN-CODE-001" in text
    assert patient not in text


def test_the_secret_is_generated_once_with_owner_only_permissions(tmp_path: Path) -> None:
    first = load_or_create_secret(None, tmp_path)
    path = tmp_path / SECRET_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(first) == 64 and load_or_create_secret(None, tmp_path) == first
    assert load_or_create_secret(SECRET, tmp_path) == SECRET.encode()
    assert [p.name for p in tmp_path.iterdir()] == [SECRET_FILE]
