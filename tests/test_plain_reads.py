"""The engine's straight-from-JSON reads agree with reading through the views, valid or not.

A plain read answers what the views would, or ``NOT_PLAIN`` (leaving the read, and the naming of an invalid
element, to the views): it must never accept what a view rejects, nor answer differently.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from needlecheck.plugin.fhir_documentation import _plain_has_onset, _viewed_has_onset
from needlecheck.plugin.fhir_input import _body_sites_of, _condition_facts, _plain_body_sites, _plain_condition_facts
from needlecheck.plugin.fhir_parties import _plain_coverage_facts, _viewed_coverage_facts
from needlecheck.plugin.fhir_record import PatientRecord
from needlecheck.plugin.fhir_view import NOT_PLAIN, InvalidFhir, view_of

ODD_VALUES: list[Any] = [None, 7, 1.5, True, "", "x", "2024", "2024-02", "2024-02-30", "2024-03-04",
                         "2024-03-04T10:00:00Z", "2024-03-04T10:00", [], [{}], {}, {"coding": 3}, {"coding": [7]},
                         {"coding": [{"code": 5}]}, {"coding": [{"code": "refuted"}]}, {"start": "2023-01-02"},
                         {"start": 4}, {"reference": 9}, {"reference": "Patient/p1"}]

CONDITION: dict[str, Any] = {
    "resourceType": "Condition", "id": "c1",
    "subject": {"reference": "Patient/p1"},
    "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                                   "code": "active"}]},
    "verificationStatus": {"coding": [{"code": "confirmed"}]},
    "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "M54.50", "display": "LBP"}],
             "text": "Low back pain"},
    "onsetDateTime": "2025-11-02",
    "onsetPeriod": {"start": "2025-10-01"},
    "recordedDate": "2025-11-03T09:00:00-05:00",
}


def _variants(resource: dict[str, Any], keys: list[str]) -> Iterator[dict[str, Any]]:
    yield resource
    for key in keys:
        for value in ODD_VALUES:
            changed = copy.deepcopy(resource)
            if value is None:
                changed.pop(key, None)
            else:
                changed[key] = copy.deepcopy(value)
            yield changed
    without_onset = {k: v for k, v in resource.items() if k != "onsetDateTime"}
    for value in ODD_VALUES:
        yield {**without_onset, "onsetPeriod": copy.deepcopy(value)}


def _through_views(read: Callable[[Any], Any], resource: dict[str, Any]) -> Any:
    try:
        return read(view_of(resource))
    except InvalidFhir:
        return InvalidFhir


@pytest.mark.parametrize("resource", list(_variants(CONDITION, [
    "id", "subject", "clinicalStatus", "verificationStatus", "code", "onsetDateTime", "onsetPeriod",
    "recordedDate"])))
def test_a_plain_condition_read_agrees_with_the_views(resource: dict[str, Any]) -> None:
    expected = _through_views(lambda view: _condition_facts(view, "p1"), resource)
    plain = _plain_condition_facts(view_of(resource), "p1")
    if expected is InvalidFhir:
        assert plain is NOT_PLAIN
    else:
        assert plain is NOT_PLAIN or plain == expected


def test_a_clean_condition_is_read_plainly() -> None:
    assert _plain_condition_facts(view_of(CONDITION), "p1") == _condition_facts(view_of(CONDITION), "p1")


LATERALITY = "http://hl7.org/fhir/us/mcode/StructureDefinition/mcode-laterality-qualifier"
SITE: dict[str, Any] = {
    "extension": [{"url": LATERALITY, "valueCodeableConcept": {"coding": [{"system": "http://snomed.info/sct",
                                                                             "code": "7771000"}]}},
                  {"url": "https://example.org/other", "valueString": "x"}],
    "coding": [{"system": "http://snomed.info/sct", "code": "31764008", "display": "Trapezius"}],
    "text": "left trapezius",
}
ORDER: dict[str, Any] = {"resourceType": "ServiceRequest", "id": "sr1", "bodySite": [SITE, {"text": "neck"}]}
SITE_VALUES: list[Any] = [*ODD_VALUES, [{"url": LATERALITY}], [{"url": LATERALITY, "valueCodeableConcept": 3}],
                          [{"url": LATERALITY, "valueCodeableConcept": {"coding": [{"code": 7}]}}], [{"url": 3}],
                          [{"url": "http://hl7.org/fhir/StructureDefinition/bodySite",
                            "valueReference": {"reference": "BodyStructure/b1"}}]]


def _body_site_variants() -> Iterator[dict[str, Any]]:
    yield ORDER
    for key in ("extension", "coding", "text"):
        for value in SITE_VALUES:
            site = copy.deepcopy(SITE)
            if value is None:
                site.pop(key)
            else:
                site[key] = copy.deepcopy(value)
            yield {**ORDER, "bodySite": [site]}
    for value in SITE_VALUES:
        yield {**ORDER, "bodySite": copy.deepcopy(value)}
        yield {**ORDER, "extension": copy.deepcopy(value)}
    yield {**ORDER, "extension": [{"url": "http://hl7.org/fhir/StructureDefinition/procedure-targetBodyStructure",
                                   "valueReference": {"reference": "BodyStructure/b1"}}]}


@pytest.mark.parametrize("resource", list(_body_site_variants()))
def test_plain_body_sites_agree_with_the_views(resource: dict[str, Any]) -> None:
    expected = _through_views(lambda view: _body_sites_of(view, PatientRecord()), resource)
    plain = _plain_body_sites(resource)
    if expected is InvalidFhir:
        assert plain is NOT_PLAIN
    else:
        assert plain is NOT_PLAIN or plain == expected


def test_plain_body_sites_read_the_usual_order() -> None:
    assert _plain_body_sites(ORDER) == _body_sites_of(view_of(ORDER), PatientRecord())
    assert len(_plain_body_sites(ORDER)) == 2


COVERAGE: dict[str, Any] = {
    "resourceType": "Coverage", "id": "cov1", "status": "active",
    "type": {"coding": [{"system": "https://nahdo.org/sopt", "code": "5"}]},
    "beneficiary": {"reference": "Patient/p1"},
    "payor": [{"reference": "Organization/payer", "display": "Northwind",
               "identifier": {"system": "http://hl7.org/fhir/sid/us-npi", "value": "123"}},
              {"display": "Second"}],
    "class": [{"value": "GRP-1", "name": "Group one"}, {"value": "PPO"}],
}
COVERAGE_VALUES: list[Any] = [*ODD_VALUES, [{"identifier": 3}], [{"identifier": {"value": 5}}],
                              [{"identifier": {"system": 5, "value": "x"}}], [{"identifier": {"system": 5}}],
                              [{"display": 4}], [{"reference": "#org"}], [{"reference": "Organization/known"}],
                              [{"value": 3}], [{"name": ["x"]}], [3]]


def _coverage_variants() -> Iterator[dict[str, Any]]:
    yield COVERAGE
    for key in ("id", "type", "payor", "class"):
        for value in COVERAGE_VALUES:
            changed = copy.deepcopy(COVERAGE)
            if value is None:
                changed.pop(key)
            else:
                changed[key] = copy.deepcopy(value)
            yield changed
    yield {**COVERAGE, "contained": [{"resourceType": "Organization", "id": "org", "name": "Inside"}],
           "payor": [{"reference": "#org"}]}


def _record_with_an_organization() -> PatientRecord:
    record = PatientRecord()
    record.add_json({"resourceType": "Organization", "id": "known", "name": "Known payer",
                     "identifier": [{"system": "urn:x", "value": "9"}]})
    return record


@pytest.mark.parametrize("resource", list(_coverage_variants()))
def test_plain_coverage_facts_agree_with_the_views(resource: dict[str, Any]) -> None:
    expected = _through_views(lambda view: _viewed_coverage_facts(view, _record_with_an_organization()), resource)
    try:
        plain = _plain_coverage_facts(view_of(resource), _record_with_an_organization())
    except InvalidFhir:
        plain = InvalidFhir  # resolving a payor reads the Coverage's contained resources, as the views do
    if expected is InvalidFhir:
        assert plain in (NOT_PLAIN, InvalidFhir)
    else:
        assert plain is NOT_PLAIN or plain == expected


def test_plain_coverage_facts_read_the_usual_coverage() -> None:
    plain = _plain_coverage_facts(view_of(COVERAGE), PatientRecord())
    assert plain == _viewed_coverage_facts(view_of(COVERAGE), PatientRecord())
    assert plain.payor_names == ("Northwind", "Second") and plain.plan_names == ("GRP-1", "Group one", "PPO")


ONSETS = ("onsetDateTime", "onsetAge", "onsetPeriod", "onsetRange", "onsetString")


def _onset_variants() -> Iterator[dict[str, Any]]:
    bare = {k: v for k, v in CONDITION.items() if k not in ONSETS}
    yield CONDITION
    yield bare
    for key in ONSETS:
        for value in [*ODD_VALUES, {"value": 3, "unit": "a"}, {"low": {"value": 1}}]:
            changed = copy.deepcopy(bare if key != "onsetAge" else CONDITION)
            changed[key] = copy.deepcopy(value)
            yield changed


@pytest.mark.parametrize("resource", list(_onset_variants()))
def test_a_plain_onset_read_agrees_with_the_views(resource: dict[str, Any]) -> None:
    expected = _through_views(_viewed_has_onset, resource)
    plain = _plain_has_onset(resource)
    if expected is InvalidFhir:
        assert plain is NOT_PLAIN
    else:
        assert plain is NOT_PLAIN or plain == expected


def test_the_usual_onsets_are_read_plainly() -> None:
    assert _plain_has_onset(CONDITION) is True
    assert _plain_has_onset({"resourceType": "Condition", "id": "c"}) is False
