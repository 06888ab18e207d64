"""Which ``_include``d resources an answer left out, so the service reads them by reference."""

from __future__ import annotations

from needlecheck.cds_hooks.included_references import (
    INCLUDE_PATHS,
    honoured_includes,
    includes_of,
    missing_included_references,
)
from needlecheck.cds_hooks.services import PATIENT_PREFETCH

COVERAGE_QUERY = "Coverage?patient=p1&status=active&_include=Coverage:payor"
COVERAGE = {"resourceType": "Coverage", "id": "c1",
            "payor": [{"reference": "Organization/payer"}, {"display": "Medicare Part B"}]}


def test_every_include_of_the_prefetch_templates_has_a_path() -> None:
    used = {include for key in PATIENT_PREFETCH for include in includes_of(key.template)}
    assert used, "the templates use _include"
    assert used <= set(INCLUDE_PATHS)


def test_an_included_payor_left_out_is_missing() -> None:
    assert missing_included_references(COVERAGE_QUERY, [COVERAGE]) == ["Organization/payer"]


def test_an_included_payor_present_is_not_missing() -> None:
    payer = {"resourceType": "Organization", "id": "payer"}
    assert missing_included_references(COVERAGE_QUERY, [COVERAGE, payer]) == []


def test_encounter_locations_are_followed_through_their_backbone() -> None:
    query = "Encounter?_id=e1&_include=Encounter:location&_include=Encounter:service-provider"
    encounter = {"resourceType": "Encounter", "id": "e1", "serviceProvider": {"reference": "Organization/o1"},
                 "location": [{"location": {"reference": "Location/l1"}}, {"location": {"reference": "Location/l1"}}]}
    assert missing_included_references(query, [encounter]) == ["Location/l1", "Organization/o1"]


def test_contained_absolute_and_display_only_references_are_not_read() -> None:
    coverage = {"resourceType": "Coverage", "id": "c1", "payor": [
        {"reference": "#payer"}, {"reference": "https://other.example/fhir/Organization/x"}, {"display": "Aetna"}]}
    assert missing_included_references(COVERAGE_QUERY, [coverage]) == []


def test_a_query_without_include_needs_nothing() -> None:
    assert missing_included_references("Coverage?patient=p1", [COVERAGE]) == []


def _searchset(self_url: str) -> dict[str, object]:
    return {"resourceType": "Bundle", "type": "searchset", "link": [{"relation": "self", "url": self_url}]}


def test_the_includes_a_self_link_names_are_honoured() -> None:
    bundle = _searchset("https://fhir.example/Encounter?_id=e1&_include=Encounter%3Alocation"
                        "&_include=Encounter:service-provider&_count=20")
    assert honoured_includes(bundle) == {"Encounter:location", "Encounter:service-provider"}


def test_an_escaped_include_parameter_name_is_decoded() -> None:
    bundle = _searchset("https://fhir.example/Coverage?patient=p1&%5Finclude=Coverage%3Apayor")
    assert honoured_includes(bundle) == {"Coverage:payor"}


def test_other_parameters_and_include_modifiers_are_not_includes() -> None:
    bundle = _searchset("https://fhir.example/Coverage?patient=p1&_include%3Aiterate=Coverage%3Apayor"
                        "&x_include=Coverage%3Apayor&code=a%2Cb")
    assert honoured_includes(bundle) == frozenset()


def test_without_a_self_link_nothing_is_honoured() -> None:
    assert honoured_includes({"resourceType": "Bundle", "type": "searchset"}) == frozenset()
