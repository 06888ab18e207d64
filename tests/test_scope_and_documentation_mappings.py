"""Loaders of the scope-of-practice and documentation tables: shipped data loads, malformed rows are refused."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from needlecheck.mappings.documentation import (
    PAYER_CLASSES,
    Requirement,
    documentation_elements,
    documentation_requirements,
    load_documentation_elements,
    load_documentation_requirements,
    requirement_for,
)
from needlecheck.mappings.errors import MappingError
from needlecheck.mappings.scope_of_practice import PROVIDER_TYPES, ScopeStatus, load_scope_of_practice, scope_on
from needlecheck.mappings.sources import SOURCES_DIR, load_policy_sources, policy_sources
from needlecheck.plugin.payer import PayerClass
from needlecheck.plugin.performer import ProviderType

SCOPE_HEADER = "state,provider_type,status,effective_from,effective_to,statement,source_ids,confidence\n"
GOOD_SCOPE = "CA,physical-therapist,not-permitted,,,s,SC-06,medium\n"
ELEMENT_HEADER = ("element,doc_rule,label,fhir_location,applies_to,requirement,covered_by,effective_from,"
                  "effective_to,source_ids,confidence\n")
GOOD_ELEMENT = "technique,DOC-12,technique,Procedure.usedCode,procedure,good-practice,,,,DOC-12,low\n"
REQUIREMENT_HEADER = "element,payer,requirement,effective_from,effective_to,statement,source_ids,confidence\n"


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_the_tables_know_the_same_provider_types_and_payer_classes_as_the_engine() -> None:
    assert {kind.value for kind in ProviderType} == PROVIDER_TYPES
    assert {payer_class.value for payer_class in PayerClass} == PAYER_CLASSES


def test_every_source_the_tables_cite_is_an_https_document() -> None:
    cited = {s for row in load_scope_of_practice() for s in row.source_ids}
    cited |= {s for element in documentation_elements().values() for s in element.source_ids}
    cited |= {s for row in documentation_requirements() for s in row.source_ids}
    assert cited and all(policy_sources()[source_id].url.startswith("https://") for source_id in cited)
    for subject in ("scope.yaml", "documentation.yaml"):
        assert load_policy_sources(SOURCES_DIR / subject)


def test_shipped_scope_rows_follow_their_dates() -> None:
    oregon = scope_on("OR", "physical-therapist", dt.date(2030, 1, 1))
    assert oregon is not None and oregon.status is ScopeStatus.NOT_PERMITTED and oregon.period.effective_to is None
    assert scope_on("WA", "physical-therapist", dt.date(2024, 6, 21)).status is ScopeStatus.NOT_PERMITTED  # type: ignore[union-attr]
    assert scope_on("WA", "physical-therapist", dt.date(2024, 6, 22)).status is ScopeStatus.ENDORSEMENT_REQUIRED  # type: ignore[union-attr]
    assert scope_on("WA", "physician", dt.date(2024, 6, 22)) is None
    assert scope_on("CO", "physical-therapist", dt.date(2024, 6, 22)) is None


@pytest.mark.parametrize(("row", "field"), [
    ("CA,physical-therapist,not-permitted,2024-02-30,,s,SC-06,medium\n", "effective_from"),
    ("CA,physical-therapist,not-permitted,2024-01-01,2023-01-01,s,SC-06,medium\n", "effective_to"),
    ("California,physical-therapist,not-permitted,,,s,SC-06,medium\n", "state"),
    ("CA,physio,not-permitted,,,s,SC-06,medium\n", "provider_type"),
    ("CA,physical-therapist,forbidden,,,s,SC-06,medium\n", "status"),
    ("CA,physical-therapist,not-permitted,,,s,SC-99,medium\n", "source_ids"),
    ("CA,physical-therapist,not-permitted,,,s,,medium\n", "source_ids"),
    ("CA,physical-therapist,not-permitted,,,s,SC-06,sure\n", "confidence"),
    ("CA,physical-therapist,not-permitted,,,,SC-06,medium\n", "statement"),
])
def test_malformed_scope_rows_name_file_row_and_field(tmp_path: Path, row: str, field: str) -> None:
    path = write(tmp_path, "scope.csv", SCOPE_HEADER + "HI,physical-therapist,silent,,,s,SC-05,medium\n" + row)
    with pytest.raises(MappingError) as raised:
        load_scope_of_practice(path)
    assert (raised.value.file, raised.value.row, raised.value.field) == ("scope.csv", 3, field)


def test_scope_periods_of_one_state_and_profession_may_not_overlap(tmp_path: Path) -> None:
    rows = ("WA,physical-therapist,not-permitted,,2024-06-22,s,SC-03,medium\n"
            "WA,physical-therapist,endorsement-required,2024-06-22,,s,SC-03,high\n")
    with pytest.raises(MappingError, match="overlaps row 2") as raised:
        load_scope_of_practice(write(tmp_path, "scope.csv", SCOPE_HEADER + rows))
    assert (raised.value.row, raised.value.field) == (3, "effective_from")
    adjacent = rows.replace(",,2024-06-22,", ",,2024-06-21,")
    assert len(load_scope_of_practice(write(tmp_path, "ok.csv", SCOPE_HEADER + adjacent))) == 2


def test_a_scope_table_without_an_effective_column_is_refused(tmp_path: Path) -> None:
    header = SCOPE_HEADER.replace("effective_to,", "")
    with pytest.raises(MappingError) as raised:
        load_scope_of_practice(write(tmp_path, "scope.csv", header + "CA,physical-therapist,not-permitted,,s,SC-06,"
                                                                      "medium\n"))
    assert raised.value.field == "effective_to"
    with pytest.raises(MappingError, match="column is missing") as missing:
        load_scope_of_practice(write(tmp_path, "s.csv", "state,provider_type\nCA,physician\n"))
    assert (missing.value.row, missing.value.field) == (1, "status")


@pytest.mark.parametrize(("row", "field"), [
    ("technique,DOC-12,technique,Procedure.usedCode,procedure,good-practice,,,,DOC-12,low\n", "element"),
    ("Technique Two,DOC-12,t,x,procedure,good-practice,,,,DOC-12,low\n", "element"),
    ("other,DOC-12,t,x,orders,good-practice,,,,DOC-12,low\n", "applies_to"),
    ("other,DOC-12,t,x,procedure,nice-to-have,,,,DOC-12,low\n", "requirement"),
    ("other,DOC-12,t,x,procedure,good-practice,DOC-001,,,DOC-12,low\n", "covered_by"),
    ("other,SC-02,t,x,procedure,good-practice,,,,DOC-12,low\n", "doc_rule"),
    ("other,DOC-12,t,x,procedure,good-practice,,2020-1-1,,DOC-12,low\n", "effective_from"),
    ("other,DOC-12,t,x,procedure,good-practice,,,,DOC-99,low\n", "source_ids"),
    ("other,DOC-12,t,,procedure,good-practice,,,,DOC-12,low\n", "fhir_location"),
])
def test_malformed_element_rows_name_file_row_and_field(tmp_path: Path, row: str, field: str) -> None:
    path = write(tmp_path, "elements.csv", ELEMENT_HEADER + GOOD_ELEMENT + row)
    with pytest.raises(MappingError) as raised:
        load_documentation_elements(path)
    assert (raised.value.file, raised.value.row, raised.value.field) == ("elements.csv", 3, field)


@pytest.mark.parametrize(("row", "field"), [
    ("teknique,class:medicare-ffs,required,,,s,DOC-12,low\n", "element"),
    ("technique,class:medicare,required,,,s,DOC-12,low\n", "payer"),
    ("technique,aetna,required,,,s,DOC-12,low\n", "payer"),
    ("technique,pack:Aetna Plan,required,,,s,DOC-12,low\n", "payer"),
    ("technique,pack:aetna,mandatory,,,s,DOC-12,low\n", "requirement"),
    ("technique,pack:aetna,required,2021-07-01,2021-06-30,s,DOC-12,low\n", "effective_to"),
    ("technique,pack:aetna,required,,,s,DOC-12,certain\n", "confidence"),
])
def test_malformed_requirement_rows_name_file_row_and_field(tmp_path: Path, row: str, field: str) -> None:
    good = "technique,class:medicare-ffs,required,,,s,DOC-12,low\n"
    path = write(tmp_path, "requirements.csv", REQUIREMENT_HEADER + good + row)
    with pytest.raises(MappingError) as raised:
        load_documentation_requirements(path, elements=frozenset({"technique"}))
    assert (raised.value.file, raised.value.row, raised.value.field) == ("requirements.csv", 3, field)


def test_shipped_elements_keep_table_order_and_the_rules_that_cover_them() -> None:
    elements = documentation_elements()
    assert list(elements)[:2] == ["muscles-named", "indication"]
    assert elements["muscles-named"].covered_by == ("DN-DOC-001", "DN-DOC-002")
    assert elements["indication"].covered_by == ("DN-DOC-003",)
    assert not elements["symptom-duration"].covered_by


def test_requirements_depend_on_payer_and_date() -> None:
    elements = documentation_elements()
    duration, findings = elements["symptom-duration"], elements["trigger-point-findings"]
    day = dt.date(2026, 3, 2)
    assert requirement_for(duration, "medicare-ffs", "medicare-ffs", day).requirement is Requirement.REQUIRED
    assert requirement_for(duration, "medicare-advantage", None, day).source_ids == ("DOC-05-MA",)
    assert requirement_for(duration, "commercial", "aetna", day).requirement is Requirement.GOOD_PRACTICE
    # NCD 30.3.3 took effect 2020-01-21.
    before_the_ncd = requirement_for(duration, "medicare-ffs", None, dt.date(2020, 1, 20))
    assert before_the_ncd.requirement is Requirement.GOOD_PRACTICE
    # MP-740 asked for trigger point findings for dates of service before 2021-07-01.
    mp740 = ("commercial", "bcbsa-mp-740")
    assert requirement_for(findings, *mp740, dt.date(2021, 6, 30)).requirement is Requirement.REQUIRED
    assert requirement_for(findings, *mp740, dt.date(2021, 7, 1)).requirement is Requirement.GOOD_PRACTICE


def test_informed_consent_is_professionally_required_by_the_aca_article() -> None:
    consent = documentation_elements()["informed-consent"]
    assert consent.requirement is Requirement.PROFESSIONALLY_REQUIRED
    assert consent.source_ids[0] == "DOC-14-ACA" and "consent is mandatory" in policy_sources()["DOC-14-ACA"].statement
    assert requirement_for(consent, "commercial", None, dt.date(2026, 3, 2)).requirement is (
        Requirement.PROFESSIONALLY_REQUIRED)


def test_the_professionally_required_level_loads_and_an_unknown_level_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "documentation_elements.csv"
    path.write_text(ELEMENT_HEADER + GOOD_ELEMENT.replace("good-practice", "professionally-required"))
    assert load_documentation_elements(path)["technique"].requirement is Requirement.PROFESSIONALLY_REQUIRED
    path.write_text(ELEMENT_HEADER + GOOD_ELEMENT.replace("good-practice", "mandatory"))
    with pytest.raises(MappingError) as raised:
        load_documentation_elements(path)
    assert raised.value.field == "requirement"
