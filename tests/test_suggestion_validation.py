"""A suggestion's update is valid FHIR R4 whole, with each draft validated once per call.

``cards_for`` validates each draft a fix changes once, however many cards suggest a change to it, then only the
elements each change writes. These tests hold that shortcut to the verdict of validating every update whole
(``fhir_problem(apply_code_change(...))``), over the request fixtures' drafts, with invalid elements inside and
outside what a change writes.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from needlecheck.cds_hooks import cards
from needlecheck.cds_hooks.cards import apply_code_change, cards_for, fhir_problem, without_empty_values
from needlecheck.mappings.code_systems import canonical_system
from needlecheck.mappings.cpt import CPT_SYSTEM
from needlecheck.plugin.findings import CodeChange, Finding, Severity, Topic

REQUESTS = Path(__file__).resolve().parent.parent / "fixtures" / "requests"
Json = dict[str, Any]


def fixture_drafts() -> Iterator[Json]:
    """Every draft Claim, ServiceRequest and Procedure of the request fixtures."""
    for path in sorted(REQUESTS.glob("*/*.json")):
        context = json.loads(path.read_text(encoding="utf-8"))["context"]
        if "claim" in context:
            yield context["claim"]
        for entry in (context.get("draftOrders") or {}).get("entry") or []:
            if entry["resource"]["resourceType"] in ("ServiceRequest", "Procedure"):
                yield entry["resource"]


def cpt_code(concept: Json | None) -> str | None:
    """The concept's CPT code as the engine finds it (any spelling of the CPT system)."""
    return next((c.get("code") for c in (concept or {}).get("coding") or []
                 if canonical_system(c.get("system")) == CPT_SYSTEM), None)


def changes_for(draft: Json) -> Iterator[CodeChange]:
    """The changes the rules could suggest on ``draft``: each line's (or the order's) code to another code, and
    every claim line merged into the first."""
    ref = f"{draft['resourceType']}/{draft['id']}"
    if draft["resourceType"] != "Claim":
        if (code := cpt_code(draft.get("code"))) is not None:
            yield CodeChange(ref, code, "20561" if code == "20560" else "20560")
        return
    lines = [(item["sequence"], cpt_code(item.get("productOrService"))) for item in draft.get("item") or []]
    for sequence, code in lines:
        if code is not None:
            yield CodeChange(ref, code, "20561" if code == "20560" else "20560", sequence)
    if len(lines) > 1 and lines[0][1] is not None:
        yield CodeChange(ref, lines[0][1], "20561", lines[0][0], merged_items=tuple(s for s, _ in lines[1:]))


def changed_concept(draft: Json) -> Json:
    """The concept a change to ``draft`` writes: the first claim line's product, or the order's code."""
    return draft["item"][0]["productOrService"] if draft["resourceType"] == "Claim" else draft["code"]


def cpt_coding(draft: Json) -> Json:
    return next(c for c in changed_concept(draft)["coding"] if canonical_system(c.get("system")) == CPT_SYSTEM)


# Invalid elements a client may send: outside what a change writes, inside the concept it writes (in what it
# replaces, what it drops and what it keeps), and in the lines a merge folds together.
MUTATIONS: dict[str, Callable[[Json], None]] = {
    "valid": lambda draft: None,
    "status is a number": lambda draft: draft.update(status=7),
    "unknown element": lambda draft: draft.update(colour="blue"),
    "bad meta.lastUpdated": lambda draft: draft.update(meta={"lastUpdated": "yesterday"}),
    "replaced display is a number": lambda draft: cpt_coding(draft).update(display=20560),
    "dropped text is a number": lambda draft: changed_concept(draft).update(text=5),
    "kept coding has a bad version": lambda draft: cpt_coding(draft).update(version=["1"]),
    "kept coding has a bad userSelected": lambda draft: cpt_coding(draft).update(userSelected="perhaps"),
    "other coding has a bad code": lambda draft: changed_concept(draft)["coding"].append({"code": " x "}),
    "bad element of the concept": lambda draft: changed_concept(draft).update(extension=[{"valueString": "x"}]),
}
CLAIM_MUTATIONS: dict[str, Callable[[Json], None]] = {
    "merged line has a bad quantity": lambda draft: draft["item"][-1].update(quantity={"value": "two"}),
    "kept line has a bad diagnosisSequence": lambda draft: draft["item"][0].update(diagnosisSequence=[0]),
    "kept line has an unknown element": lambda draft: draft["item"][0].update(colour="blue"),
}


# A code that is not a FHIR code (it ends in a space): what a change writes is checked too, not assumed valid.
NOT_A_CODE = "2056 1 "


def cases() -> Iterator[Any]:
    for draft in fixture_drafts():
        mutations = {**MUTATIONS, **(CLAIM_MUTATIONS if draft["resourceType"] == "Claim" else {})}
        for change in changes_for(draft):
            for name, mutate in mutations.items():
                mutated = copy.deepcopy(draft)
                mutate(mutated)
                label = f"{draft['resourceType']}/{draft['id']}-{change.item_sequence}-{len(change.merged_items)}"
                yield pytest.param(mutated, change, id=f"{label}-{name}")
                if name in ("valid", "status is a number"):
                    yield pytest.param(mutated, replace(change, to_code=NOT_A_CODE), id=f"{label}-{name}-not-a-code")


def fix_finding(change: CodeChange, rule_id: str = "DN-CODE-001") -> Finding:
    line_key = f"{change.resource_ref}#item-{change.item_sequence}"
    return Finding(rule_id, Severity.WARNING, Topic.CLAIM, "s", "d", line_key, "line", (), change)


def offered(card: Json) -> Json | None:
    """The resource a card's suggestion hands back, or None."""
    return card["suggestions"][0]["actions"][0]["resource"] if "suggestions" in card else None


@pytest.mark.parametrize(("draft", "change"), list(cases()))
def test_a_suggestion_is_offered_exactly_when_its_whole_update_is_valid_fhir(draft: Json, change: CodeChange) -> None:
    update = apply_code_change(draft, change)
    expected = fhir_problem(update)
    drafts = {change.resource_ref: draft}
    alone = cards_for([fix_finding(change)], "h", drafts)
    # Two cards on one draft take the other way: the draft validated once, then what each change wrote.
    together = cards_for([fix_finding(change), fix_finding(change, "DN-CODE-004")], "h", drafts)
    for card in (*alone, *together):
        if expected is None:
            assert offered(card) == update
        else:
            assert offered(card) is None
            assert card["detail"].endswith(f"is not valid FHIR R4 ({expected}).")


def test_the_cases_cover_valid_and_invalid_updates_of_every_kind() -> None:
    # The comparison above proves little unless both verdicts occur for claims, orders and merges.
    verdicts = {(change.resource_ref.split("/")[0], bool(change.merged_items),
                 fhir_problem(apply_code_change(draft, change)) is None)
                for draft, change in (case.values for case in cases())}
    assert verdicts >= {("Claim", False, True), ("Claim", False, False), ("Claim", True, True),
                        ("Claim", True, False), ("ServiceRequest", False, True), ("ServiceRequest", False, False)}
    # ... and a valid draft that only what the change wrote makes invalid, of each kind.
    written = {(change.resource_ref.split("/")[0], bool(change.merged_items))
               for draft, change in (case.values for case in cases())
               if fhir_problem(without_empty_values(draft)) is None
               and fhir_problem(apply_code_change(draft, change)) is not None}
    assert written >= {("Claim", False), ("Claim", True), ("ServiceRequest", False)}


def claim_with_two_lines() -> Json:
    draft = next(d for d in fixture_drafts() if d["resourceType"] == "Claim" and len(d.get("item") or []) == 2)
    return copy.deepcopy(draft)


def counted(monkeypatch: pytest.MonkeyPatch, name: str) -> list[tuple[Any, ...]]:
    """The arguments of each call of ``cards.<name>`` from now on."""
    calls: list[tuple[Any, ...]] = []
    real = getattr(cards, name)

    def counting(*args: Any, **kwargs: Any) -> Any:
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(cards, name, counting)
    return calls


def test_two_cards_on_one_draft_validate_it_once(monkeypatch: pytest.MonkeyPatch) -> None:
    draft = claim_with_two_lines()
    ref = f"Claim/{draft['id']}"
    first, second = (CodeChange(ref, cpt_code(item["productOrService"]) or "", "20561", item["sequence"])
                     for item in draft["item"])
    whole = counted(monkeypatch, "fhir_problem")
    parts = counted(monkeypatch, "element_problem")
    found = cards_for([fix_finding(first), fix_finding(second, "DN-CODE-004")], "h", {ref: draft})
    assert [offered(card) for card in found] == [apply_code_change(draft, first), apply_code_change(draft, second)]
    assert len(whole) == 1  # the draft, once
    # The draft whole, then the one concept each change wrote.
    assert [(type_name, value) for type_name, value, *_ in parts] == [
        ("Claim", whole[0][0]), ("CodeableConcept", offered(found[0])["item"][0]["productOrService"]),
        ("CodeableConcept", offered(found[1])["item"][1]["productOrService"])]


def test_one_card_on_a_draft_validates_its_update_whole_once(monkeypatch: pytest.MonkeyPatch) -> None:
    draft = claim_with_two_lines()
    ref = f"Claim/{draft['id']}"
    line = draft["item"][1]
    change = CodeChange(ref, cpt_code(line["productOrService"]) or "", "20561", line["sequence"])
    whole = counted(monkeypatch, "fhir_problem")
    parts = counted(monkeypatch, "element_problem")
    [card] = cards_for([fix_finding(change)], "h", {ref: draft})
    assert offered(card) == apply_code_change(draft, change)
    assert len(whole) == 1 and whole[0][0] is offered(card)
    assert len(parts) == 1 and parts[0][:2] == ("Claim", offered(card))


def test_two_cards_on_one_invalid_draft_both_say_why(monkeypatch: pytest.MonkeyPatch) -> None:
    draft = claim_with_two_lines()
    draft["insurance"][0]["sequence"] = "first"
    ref = f"Claim/{draft['id']}"
    changes = [CodeChange(ref, cpt_code(item["productOrService"]) or "", "20561", item["sequence"])
               for item in draft["item"]]
    found = cards_for([fix_finding(changes[0]), fix_finding(changes[1], "DN-CODE-004")], "h", {ref: draft})
    for card in found:
        assert offered(card) is None and "selectionBehavior" not in card
        assert f"the draft {ref} is not valid FHIR R4 (insurance.0.sequence" in card["detail"]


def test_a_change_that_writes_an_invalid_code_is_not_offered() -> None:
    # Our own codes come from the CPT table; still, what a change writes is checked, not assumed.
    draft = claim_with_two_lines()
    ref = f"Claim/{draft['id']}"
    line = draft["item"][0]
    change = CodeChange(ref, cpt_code(line["productOrService"]) or "", NOT_A_CODE, line["sequence"])
    for findings in ([fix_finding(change)], [fix_finding(change), fix_finding(change, "DN-CODE-004")]):
        for card in cards_for(findings, "h", {ref: draft}):
            assert offered(card) is None
            assert "(item.0.productOrService.coding.0.code: String should match pattern" in card["detail"]


def test_each_card_gets_its_own_update_and_the_sent_draft_is_untouched() -> None:
    draft = claim_with_two_lines()
    sent = copy.deepcopy(draft)
    ref = f"Claim/{draft['id']}"
    first, second = (CodeChange(ref, cpt_code(item["productOrService"]) or "", "20561", item["sequence"])
                     for item in draft["item"])
    found = cards_for([fix_finding(first), fix_finding(second, "DN-CODE-004")], "h", {ref: draft})
    one, two = offered(found[0]), offered(found[1])
    assert one is not None and two is not None and one is not two
    assert one["item"][1] == apply_code_change(sent, first)["item"][1]  # the second change is not in the first
    assert draft == sent


def pruned_by_definition(value: Any) -> Any:
    """``without_empty_values`` as its docstring defines it, written plainly."""
    if isinstance(value, dict):
        pruned = {key: pruned_by_definition(item) for key, item in value.items()}
        return {key: item for key, item in pruned.items() if item not in (None, "", [], {})}
    if isinstance(value, list):
        items = [pruned_by_definition(item) for item in value]
        return [item for item in items if item not in (None, "", [], {})]
    return value


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.sampled_from([0, 0.0, "", 1, "x"]) | st.integers() | st.floats(allow_nan=False)
    | st.text(max_size=3),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=3), children, max_size=4),
    max_leaves=20,
)


@settings(max_examples=300, derandomize=True)
@given(JSON_VALUES)
def test_pruning_drops_exactly_null_empty_strings_lists_and_objects(value: Any) -> None:
    pruned = without_empty_values(value)
    assert pruned == pruned_by_definition(value)
    assert type(pruned) is type(value)
    assert without_empty_values(pruned) == pruned  # the card path prunes a pruned draft again to copy it


def test_pruning_copies_every_object_and_array() -> None:
    draft = claim_with_two_lines()
    pruned = without_empty_values(draft)
    assert pruned == pruned_by_definition(draft)
    pruned["item"][0]["productOrService"]["coding"][0]["code"] = "changed"
    assert draft["item"][0]["productOrService"]["coding"][0]["code"] != "changed"


WARM_UP_THEN_VALIDATE = """
import json, sys
from needlecheck.cds_hooks.cards import fhir_problem, load_suggestion_models
load_suggestion_models()
before = set(sys.modules)
for draft in json.loads(sys.stdin.read()):
    fhir_problem(draft)
print(json.dumps(sorted(name for name in set(sys.modules) - before if name.startswith("fhir.resources"))))
"""


def test_the_warm_up_loads_every_model_a_suggestion_validates_with() -> None:
    # A model imports its elements' models when it first validates one, and the worker's warm-up suggestion is
    # an order's: without this, a worker's first Claim suggestion waited for a dozen imports. In a process of its
    # own, so that nothing is imported yet. A contained resource of another type loads its model when it comes.
    drafts = [draft for draft in fixture_drafts()
              if {c["resourceType"] for c in draft.get("contained") or []} <= set(cards.SUGGESTED_RESOURCE_TYPES)]
    assert {draft["resourceType"] for draft in drafts} == {"Claim", "ServiceRequest"}
    assert any(draft.get("contained") for draft in drafts if draft["resourceType"] == "Claim")
    run = subprocess.run([sys.executable, "-c", WARM_UP_THEN_VALIDATE], input=json.dumps(drafts), text=True,
                         capture_output=True, check=True, timeout=300)
    assert json.loads(run.stdout) == []
