"""Audit truth: an audit record's ``rule_ids`` are the rules whose findings became cards, so the README's
per-rule query counts what clinicians were shown, not the checks that could not run."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from needlecheck.cds_hooks.app import create_app
from needlecheck.cds_hooks.audit import AuditRecord, TracedCall, card_rule_ids, make_audit_record
from needlecheck.cds_hooks.settings import Settings
from needlecheck.cds_hooks.suppression import IssuedCard

REQUESTS = Path(__file__).resolve().parent.parent / "fixtures" / "requests"
ORDER_SIGN = "/cds-services/dry-needling-order-sign"
NCCI_RULES = ("DN-NCCI-001", "DN-NCCI-002")


@pytest.fixture
def without_data_sets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Flask]:
    """The service with no official data set installed (an empty data sets directory)."""
    monkeypatch.setenv("NEEDLECHECK_DATASETS_DIR", str(tmp_path / "no-datasets"))
    application = create_app(Settings(data_dir=tmp_path / "data", allow_http=True))
    yield application
    application.extensions["needlecheck.pool"].shutdown(wait=False)
    application.extensions["needlecheck.store"].close()


def load(name: str) -> dict[str, Any]:
    """A request fixture."""
    return json.loads((REQUESTS / name).read_text(encoding="utf-8"))


def medicare(body: dict[str, Any]) -> dict[str, Any]:
    """``body`` with its Coverage typed Medicare (SOPT 1), where a missing NCCI file decides something."""
    coverage = body["prefetch"]["coverage"]["entry"][0]["resource"]
    coverage["type"] = {"coding": [{"system": "urn:oid:2.16.840.1.113883.3.221.5", "code": "1",
                                    "display": "MEDICARE"}]}
    return body


def test_rules_that_could_not_run_are_not_recorded_as_fired(without_data_sets: Flask) -> None:
    # Two units of 20561 on one date for Medicare: the MUE file would decide, and it is not installed (20560 has a
    # shipped MUE of 1, FE-07, which decides without the file; 20561 has none).
    body = medicare(load("order-sign/code001-20561-two-muscles.json"))
    body["context"]["draftOrders"]["entry"][0]["resource"]["quantityQuantity"] = {"value": 2}
    response = without_data_sets.test_client().post(ORDER_SIGN, json=body)
    assert response.status_code == 200
    cards = response.get_json()["cards"]
    # The NCCI MUE rule was evaluated and reported that it could not check: its data set is missing.
    [unchecked] = [card for card in cards if "extension" not in card]
    assert "ncci-mue-practitioner" in unchecked["detail"]
    [record] = without_data_sets.extensions["needlecheck.store"].invocations()
    assert "DN-UNIT-001" in record.rule_ids  # it fired: its card is in the answer
    assert not set(NCCI_RULES) & set(record.rule_ids)
    assert record.rule_ids == tuple(sorted({card["extension"]["org.needlecheck.rule-id"]
                                            for card in cards if "extension" in card}))


def test_a_clean_order_records_no_rule(without_data_sets: Flask) -> None:
    response = without_data_sets.test_client().post(ORDER_SIGN, json=load("order-sign/non-dn-order-only.json"))
    assert response.get_json() == {"cards": []}
    [record] = without_data_sets.extensions["needlecheck.store"].invocations()
    assert record.rule_ids == ()


def test_card_rule_ids_reads_each_cards_rule_once_and_ignores_cards_without_one() -> None:
    body = {"cards": [
        {"extension": {"org.needlecheck.rule-id": "DN-DOC-002"}},
        {"extension": {"org.needlecheck.rule-id": "DN-CODE-001"}},
        {"extension": {"org.needlecheck.rule-id": "DN-DOC-002"}},
        {"summary": "Not checked: …"},
        {"extension": {"org.needlecheck.rule-id": ["DN-MCR-001", "DN-FREQ-001"]}},
    ]}
    assert card_rule_ids(body) == ("DN-CODE-001", "DN-DOC-002", "DN-FREQ-001", "DN-MCR-001")
    assert card_rule_ids(None) == ()


def test_a_record_made_for_the_audit_writer_is_the_record_the_dataclass_makes() -> None:
    # make_audit_record skips the frozen dataclass's __init__ (AuditRecord.of): the same record either way.
    issued = (IssuedCard("card-1", "DN-CODE-001", "patient-key", "finding-key"),)
    call = TracedCall("hook-1", 1.5, 2, ("DN-CODE-001",), ("card-1",), ("suggestion-1",), ("DN-NCCI-001",), issued,
                      3, 7)
    made = make_audit_record(1_700_000_000.25, "dry-needling-order-sign", 200, None, "anonymous", 4.5, call)
    expected = AuditRecord(
        recorded_at=dt.datetime.fromtimestamp(1_700_000_000.25, dt.UTC), service_id="dry-needling-order-sign",
        hook="order-sign", hook_instance="hook-1", client_id="anonymous", http_status=200, problem=None,
        rule_ids=("DN-CODE-001",), card_uuids=("card-1",), suggestion_uuids=("suggestion-1",), total_ms=4.5,
        fhir_ms=1.5, fhir_requests=2, suppressed_rule_ids=("DN-NCCI-001",), prefetch_provided=3, prefetch_keys=7,
        issued_cards=issued)
    assert type(made) is AuditRecord
    assert made == expected and hash(made) == hash(expected) and repr(made) == repr(expected)
    assert dataclasses.asdict(made) == dataclasses.asdict(expected)  # issued_cards too (not compared by ==)
    assert made.as_json() == expected.as_json()
    with pytest.raises(dataclasses.FrozenInstanceError):
        made.problem = "x"  # type: ignore[misc]
    # Not every field named: the dataclass's own __init__ (its defaults, its errors).
    partial = AuditRecord.of(recorded_at=expected.recorded_at, service_id="s", hook=None, hook_instance=None,
                             client_id="c", http_status=200)
    assert partial == AuditRecord(expected.recorded_at, "s", None, None, "c", 200)
    with pytest.raises(TypeError):
        AuditRecord.of(service_id="s")
