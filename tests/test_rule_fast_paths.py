"""The rules' shortcuts answer what the long way would, on many generated contexts and on odd input.

Each shortcut is a cheap precondition or an index (``plugin.same_day.could_meet``, ``history_on``, the rows
DN-SCOPE-001 and DN-CODE-005 pick once per table, the codes DN-NCCI-002 finds a shipped MUE for, DN-DOC-010's
elements without good practice) or a leaner read of a client's Bundle (``fhir_client.matches``); here each is
held to the long way it replaced.
"""

from __future__ import annotations

import copy
import datetime as dt
import random
from decimal import Decimal
from typing import Any

import pytest

from needlecheck.cds_hooks.fhir_client import matches
from needlecheck.cds_hooks.prefetch import KeyStatus, resolve_prefetch
from needlecheck.cds_hooks.services import PrefetchKey
from needlecheck.mappings.code_pairs import code_pairs
from needlecheck.mappings.cpt import cpt_codes
from needlecheck.mappings.dry_needling_substitutes import substitute_for, substitutes
from needlecheck.mappings.ncci_mue import mue_defaults, mue_on
from needlecheck.mappings.scope_of_practice import ScopeStatus, scope_of_practice
from needlecheck.plugin.context import (
    BillingContext,
    ConditionFacts,
    CoverageFacts,
    Performer,
    PriorService,
    RuleOptions,
    ServiceLine,
)
from needlecheck.plugin.engine import run_rules
from needlecheck.plugin.payer import payer_of
from needlecheck.plugin.performer import provider_types
from needlecheck.plugin.rule import from_table
from needlecheck.plugin.rules.documentation_complete import (
    ALWAYS_LISTED,
    SHOWN_BY_THE_LINE,
    _asked_of,
    missing_elements,
    requirements_payer,
)
from needlecheck.plugin.rules.dry_needling_billed_under_other_code import _substitute_codes
from needlecheck.plugin.rules.ncci_mue import _default_codes
from needlecheck.plugin.rules.scope_of_practice import _unknown_parts
from needlecheck.plugin.same_day import _pair_matches, could_meet, history_on, pair_matches
from needlecheck.plugin.terms import BodySite, Coding

SNOMED = "http://snomed.info/sct"
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
NUCC = "http://nucc.org/provider-taxonomy"
DEGREE = "http://terminology.hl7.org/CodeSystem/v2-0360"
SOPT = "urn:oid:2.16.840.1.113883.3.221.5"
CODES = ["20560", "20561", "20560", "20561", "20552", "20553", "20999", "97810", "97813", "20550", "97140", "97032",
         "97014", "G0283", "99213", "99243", "98940", "97110", "12345"]
MUSCLES = ["31764008", "11327007", "277441005", "72573008", "102288007", "999999", "35259002"]
DIAGNOSES = ["M54.50", "M54.5", "M79.18", "M79.1", "M54.2", "O26.89", "XYZ", "M54.16"]
PERFORMERS = [[("208100000X", NUCC)], [("225100000X", NUCC)], [("111N00000X", NUCC)], [("171100000X", NUCC)],
              [("NP", DEGREE)], [("MD", DEGREE), ("208100000X", NUCC)], []]
# No coverage, a Source of Payment Typology code (Medicare, commercial), nothing, or a payor's name.
PAYORS: list[tuple[str, str] | None] = [None, ("sopt", "1"), ("sopt", "5"), ("name", ""), ("name", "Aetna"),
                                        ("name", "Noridian Healthcare Solutions"),
                                        ("name", "Washington Labor and Industries"), ("name", "Northwind Health Plan")]
ELEMENTS = ["muscles-named", "indication", "symptom-duration", "trigger-point-findings", "plan-of-care",
            "provider-qualification", "no-injectate-statement", "session-date", "informed-consent"]
DAYS = [dt.date(2026, 4, 14), dt.date(2020, 1, 10), dt.date(2022, 10, 5), dt.date(2024, 6, 21), dt.date(2019, 12, 1)]


def _line(r: random.Random, index: int, claim: bool, today: dt.date) -> ServiceLine:
    sites = tuple(BodySite(tuple(Coding(SNOMED, code, None) for code in r.sample(MUSCLES, r.choice([0, 1, 1, 2]))),
                           r.choice([None, "Left upper trapezius"]),
                           tuple(r.sample(["7771000", "24028007"], r.choice([0, 1]))))
                  for _ in range(r.choice([0, 1, 2, 3])))
    return ServiceLine(
        key=f"k{index}", label=f"line {index}", resource_ref="Claim/c" if claim else f"ServiceRequest/s{index}",
        code=r.choice(CODES), date_of_service=r.choice([today, today, None, r.choice(DAYS)]),
        units=r.choice([Decimal(1), Decimal(1), Decimal(2)]), item_sequence=index + 1 if claim else None,
        modifiers=tuple(r.sample(["50", "RT", "LT", "GA", "GY", "KX", "25", "XS"], r.choice([0, 0, 1, 2]))),
        body_sites=sites,
        indications=tuple(Coding(r.choice([ICD10CM, ICD10CM, SNOMED]), code, None)
                          for code in r.choices(DIAGNOSES, k=r.choice([0, 1, 2, 3]))),
        injected_substances=r.choice([(), (), ("lidocaine",)]),
        described_as=tuple(r.sample(["Dry needling", "Therapeutic exercise", "massage"], r.choice([0, 1, 2]))),
        performers=tuple(Performer(f"Practitioner/p{n}", tuple(Coding(system, code, None)
                                                               for code, system in r.choice(PERFORMERS)))
                         for n in range(r.choice([0, 1, 1, 2]))),
        service_state=r.choice([None, None, "CA", "WA", "TX", "PA"]),
        documented=frozenset(r.sample(ELEMENTS, r.choice([0, 3, 9]))), is_procedure_record=claim or r.random() < 0.3)


def _context(r: random.Random) -> BillingContext:
    claim = r.random() < 0.5
    today = r.choice(DAYS)
    payor = r.choice(PAYORS)
    coverage = None if payor is None else CoverageFacts(
        "Coverage/c", (Coding(SOPT, payor[1], None),) if payor[0] == "sopt" else (), (),
        (payor[1],) if payor[0] == "name" and payor[1] else ())
    return BillingContext(
        "claim-create" if claim else "order-sign", "p1",
        tuple(_line(r, index, claim, today) for index in range(r.choice([0, 1, 1, 2, 3]))), today,
        tuple(PriorService(f"Procedure/h{n}", r.choice(CODES),
                           r.choice([None, today, today - dt.timedelta(days=7 * n)]))
              for n in range(r.choice([0, 1, 3, 12]))),
        (), coverage,
        tuple(ConditionFacts(f"Condition/c{n}", (Coding(ICD10CM, r.choice(DIAGNOSES), None),),
                             r.choice([None, today - dt.timedelta(days=100)]), None, r.choice([None, "active"]))
              for n in range(r.choice([0, 1, 2]))),
        RuleOptions(r.random() < 0.3))


CONTEXTS = [_context(random.Random(seed)) for seed in range(400)]


def test_the_generated_contexts_reach_the_long_ways() -> None:
    """The contexts are worth testing on: pairs meet, lines go unpaid, the scope rule looks at the table."""
    met = {pair_id for context in CONTEXTS for pair_id in code_pairs() if pair_matches(context, pair_id)}
    assert met == set(code_pairs())
    fired = {finding.rule_id for context in CONTEXTS for finding in run_rules(context)}
    assert {"DN-SCOPE-001", "DN-DOC-010", "DN-CODE-002", "DN-UNIT-001", "DN-CODE-005"} <= fired


@pytest.mark.parametrize("with_history", [True, False])
def test_a_pair_without_codes_of_both_sets_matches_nothing(with_history: bool) -> None:
    for context in CONTEXTS:
        for pair_id, pair in code_pairs().items():
            found = _pair_matches(context, pair_id, with_history)
            if not could_meet(context, pair):
                assert found == []
            assert pair_matches(context, pair_id, with_history) == found


def test_the_history_of_a_day_is_the_record_s_procedures_of_that_day_in_order() -> None:
    for context in CONTEXTS:
        days = {context.date_of(line) for line in context.lines} | {p.date_of_service for p in context.history}
        for day in days - {None}:
            assert history_on(context, day) == [p for p in context.history if p.date_of_service == day]


def _unknown_parts_reading_every_row(line: ServiceLine, day: dt.date) -> str | None:
    """DN-SCOPE-001's "not checked" reasons as the rule first worked them out, filtering the whole table."""
    deciding = [row for row in scope_of_practice() if row.status in (ScopeStatus.NOT_PERMITTED,
                                                                     ScopeStatus.ENDORSEMENT_REQUIRED)
                and row.period.covers(day)]
    unread = [performer.reference for performer in line.performers if not performer.codes]
    profession_unknown = not line.performers or bool(unread)
    if line.service_state is None:
        if profession_unknown and deciding:
            return "unknown profession and state"
        types = {kind.value for kind in provider_types(line)}
        return "unknown state" if any(row.provider_type in types for row in deciding) else None
    if profession_unknown and any(row.state == line.service_state for row in deciding):
        return "unknown profession"
    return None


def test_the_scope_rule_says_not_checked_exactly_when_the_whole_table_would() -> None:
    seen = set()
    for context in CONTEXTS:
        for line in context.lines:
            for day in DAYS:
                expected = _unknown_parts_reading_every_row(line, day)
                assert (_unknown_parts(line, day) is None) == (expected is None)
                seen.add(expected)
    assert seen == {None, "unknown profession and state", "unknown state", "unknown profession"}


def test_documentation_lists_the_same_elements_with_good_practice_left_out_first() -> None:
    compared = 0
    for context in CONTEXTS:
        for line in context.dry_needling_lines:
            payer = requirements_payer(payer_of(context), line, context)
            every = missing_elements(line, payer, context)
            shown = line.documented | {element for element, shown in SHOWN_BY_THE_LINE.items() if shown(line)}
            asked = _asked_of(payer.payer_class.value, payer.pack, context.date_of(line), line.is_procedure_record)
            assert every == [requirement for element, requirement in asked if element not in shown]
            listed = missing_elements(line, payer, context, good_practice=False)
            assert listed == [item for item in every if item.requirement in ALWAYS_LISTED]
            compared += bool(listed) + bool(every)
    assert compared > 100


def test_a_code_no_substitute_row_names_is_never_a_substitute() -> None:
    codes = _substitute_codes(substitutes())
    for code in [*cpt_codes(), "12345", ""]:
        for day in DAYS:
            if code not in codes:
                assert substitute_for(code, day) is None
    assert any(substitute_for(code, DAYS[0]) for code in codes)


def test_a_code_no_shipped_mue_names_has_no_mue_without_a_table() -> None:
    codes = _default_codes(mue_defaults())
    for code in [*cpt_codes(), "12345", ""]:
        for day in DAYS:
            if code not in codes:
                assert mue_on(None, code, day) is None
    assert any(mue_on(None, code, DAYS[0]) for code in codes)


def test_what_is_derived_from_a_table_is_derived_again_for_another_table() -> None:
    calls: list[tuple[int, ...]] = []

    def total(table: tuple[int, ...]) -> int:
        calls.append(table)
        return sum(table)

    first, second = (1, 2), (3, 4)
    assert [from_table(first, total), from_table(first, total), from_table(second, total)] == [3, 3, 7]
    assert calls == [first, second]


def _matches_reading_each_key_twice(bundle: dict[str, Any]) -> list[dict[str, Any]]:
    """``fhir_client.matches`` as it was first written."""
    found = []
    entries = bundle.get("entry")
    for entry in entries if isinstance(entries, list) else []:
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if not isinstance(resource, dict):
            continue
        mode = (entry.get("search") or {}).get("mode") if isinstance(entry.get("search"), dict) else None
        if mode == "outcome" or resource.get("resourceType") == "OperationOutcome":
            continue
        found.append(resource)
    return found


PROCEDURE = {"resourceType": "Procedure", "id": "p1"}
ODD_ENTRIES: list[Any] = [
    None, 7, "x", [], {}, {"resource": None}, {"resource": 3}, {"resource": []}, {"resource": {}},
    {"resource": PROCEDURE}, {"resource": {"resourceType": "OperationOutcome"}},
    {"resource": PROCEDURE, "search": None}, {"resource": PROCEDURE, "search": {}},
    {"resource": PROCEDURE, "search": 5},
    {"resource": PROCEDURE, "search": []}, {"resource": PROCEDURE, "search": "outcome"},
    {"resource": PROCEDURE, "search": {"mode": "outcome"}}, {"resource": PROCEDURE, "search": {"mode": "match"}},
    {"resource": PROCEDURE, "search": {"mode": None}}, {"resource": PROCEDURE, "search": {"mode": 1}},
    {"resource": {"resourceType": "OperationOutcome"}, "search": {"mode": "match"}},
]
ODD_BUNDLES: list[dict[str, Any]] = [
    {"resourceType": "Bundle"}, {"resourceType": "Bundle", "entry": None}, {"resourceType": "Bundle", "entry": {}},
    {"resourceType": "Bundle", "entry": "x"}, {"resourceType": "Bundle", "entry": ODD_ENTRIES},
    *({"resourceType": "Bundle", "entry": [entry, {"resource": PROCEDURE}]} for entry in ODD_ENTRIES),
]


@pytest.mark.parametrize("bundle", ODD_BUNDLES)
def test_a_bundle_s_matches_are_what_they_were_on_any_entry(bundle: dict[str, Any]) -> None:
    assert matches(copy.deepcopy(bundle)) == _matches_reading_each_key_twice(bundle)


ODD_VALUES: list[Any] = [None, 7, "x", [], {}, {"resourceType": None}, {"resourceType": 5}, {"resourceType": ""},
                         {"resourceType": "OperationOutcome"}, {"resourceType": "Patient", "id": "p1"}, *ODD_BUNDLES]


@pytest.mark.parametrize("value", ODD_VALUES)
def test_a_prefetched_value_is_used_or_fetched_as_before(value: Any) -> None:
    """Used as given (a resource, a Bundle's matches, ``null`` as no data), else to be fetched: without a FHIR
    server that is a failure, as CDS Hooks says for a key the client did not fill."""
    key = PrefetchKey("patient", "Patient/{{context.patientId}}", "the patient")
    outcome = resolve_prefetch((key,), {"patient": value}, {"patientId": "p1"}, None, None)["patient"]  # type: ignore[arg-type]
    kind = value.get("resourceType") if isinstance(value, dict) else None
    if value is None:
        assert outcome.status is KeyStatus.NULL
    elif not isinstance(kind, str) or kind == "OperationOutcome":
        assert outcome.status is KeyStatus.FAILED and outcome.problem == "not in prefetch and no FHIR server"
    elif kind == "Bundle":
        assert (outcome.status, outcome.resources) == (KeyStatus.PROVIDED, _matches_reading_each_key_twice(value))
    else:
        assert (outcome.status, outcome.resources) == (KeyStatus.PROVIDED, [value])
