"""Reading FHIR JSON through views: elements checked on read, invalid ones named by path."""

from __future__ import annotations

import copy
import datetime as dt
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from needlecheck.cds_hooks.errors import ApiError
from needlecheck.cds_hooks.fhir_client import FhirLimits
from needlecheck.cds_hooks.invoke import run_hook
from needlecheck.cds_hooks.services import CLAIM_CREATE
from needlecheck.plugin.fhir_record import PatientRecord, without_invalid_resources
from needlecheck.plugin.fhir_view import InvalidFhir, is_resource, view_of

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "requests"
PROCEDURE: dict[str, Any] = {
    "resourceType": "Procedure", "id": "p1", "status": "completed", "subject": {"reference": "Patient/p1"},
    "performedDateTime": "2026-03-02T10:30:00-06:00",
    "bodySite": [{"coding": [{"system": "http://snomed.info/sct", "code": "31764008"}]}],
}


def test_elements_read_as_on_a_model() -> None:
    procedure = view_of(PROCEDURE)
    assert procedure.path == "Procedure/p1"
    assert is_resource(procedure, "Procedure") and not is_resource(procedure, "Claim")
    assert procedure.bodySite[0].coding[0].code == "31764008"
    assert procedure.performedDateTime == dt.datetime(2026, 3, 2, 10, 30, tzinfo=dt.timezone(dt.timedelta(hours=-6)))
    assert procedure.note == [] and procedure.location is None
    assert procedure.bodySite is procedure.bodySite  # read and wrapped once


def test_dates_full_partial_and_the_alias_of_class() -> None:
    coverage = view_of({"resourceType": "Coverage", "id": "c", "period": {"start": "2026-01", "end": "2026-12-31"},
                        "class": [{"value": "Part B"}]})
    assert coverage.period.start == "2026-01"  # no day: kept as written
    assert coverage.period.end == dt.date(2026, 12, 31)
    assert coverage.class_fhir[0].value == "Part B"


@pytest.mark.parametrize(("change", "path"), [
    ({"bodySite": "trapezius"}, "Procedure/p1.bodySite"),
    ({"bodySite": [{"coding": [{"code": 31764008}]}]}, "Procedure/p1.bodySite[0].coding[0].code"),
    ({"performedDateTime": "2 March 2026"}, "Procedure/p1.performedDateTime"),
    ({"performedDateTime": "2026-02-30"}, "Procedure/p1.performedDateTime"),
    ({"contained": [{"resourceType": "Nope"}]}, "Procedure/p1.contained[0].resourceType"),
    ({"contained": [{"resourceType": {"not": "a string"}}]}, "Procedure/p1.contained[0].resourceType"),
])
def test_a_wrong_type_is_named_by_its_path_when_read(change: dict[str, Any], path: str) -> None:
    procedure = view_of({**PROCEDURE, **change})
    with pytest.raises(InvalidFhir) as raised:
        _ = [c.code for site in procedure.bodySite for c in site.coding], procedure.performedDateTime, \
            procedure.contained
    assert raised.value.path == path


@pytest.mark.parametrize(("sequence", "valid"), [(1, True), (0, False), (-1, False), (True, False), ("1", False),
                                                 (1.0, False)])
def test_a_positive_integer_is_an_int_above_zero_and_never_a_boolean(sequence: object, valid: bool) -> None:
    item = view_of({"resourceType": "Claim", "id": "c", "item": [{"sequence": sequence}]}).item[0]
    if valid:
        assert item.sequence == sequence
    else:
        with pytest.raises(InvalidFhir) as raised:
            _ = item.sequence
        assert raised.value.path == "Claim/c.item[0].sequence"


def test_a_name_that_is_no_element_of_the_type_is_an_attribute_error() -> None:
    procedure = view_of(PROCEDURE)
    assert not hasattr(procedure, "quantity") and not hasattr(procedure, "_private")
    assert getattr(view_of({**PROCEDURE, "id": "p2"}), "quantity", "absent") == "absent"  # on every view of the type
    assert procedure.status == "completed"


def test_an_element_never_read_is_never_checked() -> None:
    procedure = view_of({**PROCEDURE, "outcome": 7})
    assert procedure.bodySite[0].coding[0].code == "31764008"
    with pytest.raises(InvalidFhir):
        _ = procedure.outcome


def test_an_invalid_resource_of_the_record_is_dropped_and_the_context_built_again() -> None:
    record = PatientRecord()
    record.add_json({**PROCEDURE, "id": "bad", "performedDateTime": "yesterday"})
    record.add_json(PROCEDURE)
    built = without_invalid_resources(record, lambda: [p.performedDateTime for p in record.all_of("Procedure")])
    assert len(built) == 1 and record.invalid == ["Procedure/bad"]
    assert [p["id"] for p in record.prior_procedures] == ["p1"]


def test_an_invalid_element_of_the_request_is_a_400_naming_it() -> None:
    body = json.loads((FIXTURES / "claim-create/clean-20561-four-muscles-contained.json").read_text())
    body["context"]["claim"]["item"][0]["quantity"] = {"value": "many"}
    with pytest.raises(ApiError) as raised:
        run_hook(CLAIM_CREATE, body, FhirLimits(), ThreadPoolExecutor(1))
    assert raised.value.status == 400
    assert raised.value.expression == "context.claim.item[0].quantity.value"


def test_an_invalid_prefetched_resource_is_ignored_as_it_was_before_views() -> None:
    body = json.loads((FIXTURES / "claim-create/clean-20561-four-muscles-contained.json").read_text())
    spoiled = copy.deepcopy(body)
    for entry in (spoiled["prefetch"].get("conditions") or {}).get("entry", []):
        entry["resource"]["clinicalStatus"] = "active"  # a code where a CodeableConcept belongs
    assert spoiled != body, "the fixture should prefetch Conditions"
    pool = ThreadPoolExecutor(1)
    answer = run_hook(CLAIM_CREATE, spoiled, FhirLimits(), pool, today=dt.date(2026, 5, 1))
    without = copy.deepcopy(body)
    without["prefetch"]["conditions"] = {"resourceType": "Bundle", "type": "searchset", "entry": []}
    expected = run_hook(CLAIM_CREATE, without, FhirLimits(), pool, today=dt.date(2026, 5, 1))
    assert [c["summary"] for c in answer.body["cards"]] == [c["summary"] for c in expected.body["cards"]]
