"""``PatientRecord`` keeps its resources by type as they come: ``all_of`` always answers what ``resources`` holds."""

from __future__ import annotations

from typing import Any

from needlecheck.plugin.fhir_record import PatientRecord
from needlecheck.plugin.fhir_view import InvalidFhir, view_of


def _grouped(record: PatientRecord, kind: str) -> tuple[Any, ...]:
    return tuple(view for view in record.resources.values() if view.resource_type == kind)


def _agrees(record: PatientRecord) -> None:
    for kind in ("Condition", "Coverage", "Procedure", "ServiceRequest", "Patient"):
        assert record.all_of(kind) == _grouped(record, kind)


def test_all_of_follows_adds_replacements_and_discards() -> None:
    record = PatientRecord()
    _agrees(record)
    record.add_json({"resourceType": "Condition", "id": "c1"})
    record.add_json({"resourceType": "Coverage", "id": "v1"})
    _agrees(record)
    record.add_json({"resourceType": "Condition", "id": "c2"})
    _agrees(record)  # asked between adds, then more added
    first = record.resources["Condition/c1"]
    record.add_json({"resourceType": "Condition", "id": "c1", "code": {"text": "again"}})
    assert record.all_of("Condition")[0] is not first and record.all_of("Condition")[0].json["code"]
    _agrees(record)
    record.add(view_of({"resourceType": "ServiceRequest", "id": "s1"}, "context.draftOrders.entry[0].resource"))
    record.add(view_of({"resourceType": "ServiceRequest", "id": "s1"}, "context.draftOrders.entry[1].resource"))
    _agrees(record)
    assert record.discard(InvalidFhir("Condition/c2.code", "must be an object"))
    _agrees(record)
    record.add_json({"resourceType": "Procedure", "id": "p1"})
    _agrees(record)
    assert record.all_of("Observation") == ()


def test_a_record_made_with_resources_groups_them() -> None:
    views = {f"Condition/{i}": view_of({"resourceType": "Condition", "id": i}) for i in ("a", "b")}
    record = PatientRecord(resources=dict(views))
    assert record.all_of("Condition") == tuple(views.values())
    record.add_json({"resourceType": "Condition", "id": "c"})
    _agrees(record)
