"""Rendering findings as CDS Hooks 2.0.1 cards.

The card layer knows findings, not rules: a finding's fix becomes a suggestion with one ``update`` of
the whole draft resource; its sources become the card's source and links. Card and suggestion uuids
are derived from (hookInstance, rule, line) so the same problem keeps its identity for feedback.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections import Counter
from dataclasses import dataclass
from typing import Any

from needlecheck.mappings.code_systems import canonical_system
from needlecheck.mappings.cpt import CPT_SYSTEM, cpt_codes
from needlecheck.mappings.fhir_types import ANY_RESOURCE, fhir_types
from needlecheck.plugin.findings import CodeChange, Finding, Severity, Topic

CARD_TYPE_SYSTEM = "http://terminology.hl7.org/CodeSystem/cdshooks-card-type"
OVERRIDE_REASON_SYSTEM = "urn:needlecheck:override-reason"
SOURCE_LABEL = "Needlecheck dry-needling billing rules"
RULE_EXTENSION = "org.needlecheck.rule-id"
MAX_SUMMARY = 139  # CDS Hooks: under 140 characters
# What a card summary may take: rules write summaries that fit (a test holds them to it); the card layer
# never cuts one, since a summary cut mid-sentence can say the opposite of the finding.
SUMMARY_BUDGET = 100
log = logging.getLogger(__name__)
_CARD_NAMESPACE = uuid.UUID("3f0c8f9e-5a53-4f4e-9b6c-6f2d0e1c7a11")

OVERRIDE_REASONS = (
    ("documented-elsewhere", "Documentation elsewhere in the record supports the entry as it is"),
    ("payer-instruction", "The payer has instructed otherwise for this patient or contract"),
    ("clinical-judgement", "Clinical judgement: the entry is correct as written"),
)
_TOPIC_DISPLAY = {Topic.CLAIM: "Claim", Topic.COVERAGE: "Coverage Information", Topic.LIMITS: "Limits"}


def card_uuid(hook_instance: str, *parts: str) -> str:
    """A uuid that is the same for the same problem in the same hook call."""
    return str(uuid.uuid5(_CARD_NAMESPACE, "|".join((hook_instance, *parts))))


def shorten(text: str, limit: int = MAX_SUMMARY) -> str:
    """``text`` cut to ``limit`` characters at a word boundary, marked with an ellipsis when cut."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1].rsplit(" ", 1)[0]
    return cut + "…"


def without_empty_values(value: Any) -> Any:
    """A copy of ``value`` without null, "", [] or {} anywhere: neither CDS Hooks nor FHIR allows them,
    and a draft echoed back in an update must not carry a sender's empty elements into our response."""
    # One pass, a call only for what can hold something, and the test inlined: a suggestion prunes a whole draft
    # (tests/test_suggestion_validation.py holds it to the plain definition). Not 0 or false: those are values.
    if isinstance(value, dict):
        pruned: dict[str, Any] = {}
        for key, item in value.items():
            if isinstance(item, _CONTAINERS):
                item = without_empty_values(item)
            if item is not None and (item or not isinstance(item, _EMPTIABLE)):
                pruned[key] = item
        return pruned
    if isinstance(value, list):
        kept = []
        for item in value:
            if isinstance(item, _CONTAINERS):
                item = without_empty_values(item)
            if item is not None and (item or not isinstance(item, _EMPTIABLE)):
                kept.append(item)
        return kept
    return value


_CONTAINERS = (dict, list)
_EMPTIABLE = (str, list, dict)


def _merge_items(claim: dict[str, Any], change: CodeChange) -> None:
    """Fold the lines ``change.merged_items`` into line ``change.item_sequence``: one line, one unit."""
    items = claim.get("item") or []
    kept = next((item for item in items if item.get("sequence") == change.item_sequence), None)
    merged = [item for item in items if item.get("sequence") in change.merged_items]
    if kept is None:
        return
    for key in ("procedureSequence", "diagnosisSequence"):
        joined = [n for item in (kept, *merged) for n in item.get(key) or []]
        if joined:
            kept[key] = list(dict.fromkeys(joined))
    if "quantity" in kept:
        kept["quantity"] = {**kept["quantity"], "value": 1}
    claim["item"] = [item for item in items if item.get("sequence") not in change.merged_items]


def apply_code_change(resource: dict[str, Any], change: CodeChange) -> dict[str, Any]:
    """A copy of the draft resource with the CPT code replaced (in the claim line, or the order's code),
    and the lines the change merges folded into that line."""
    return _changed(without_empty_values(resource), change)


def _changed(updated: dict[str, Any], change: CodeChange) -> dict[str, Any]:
    """``apply_code_change`` on a pruned copy the caller hands over: it is changed in place and returned."""
    if change.merged_items:
        _merge_items(updated, change)
    if change.item_sequence is not None:
        targets = [item.get("productOrService") for item in updated.get("item") or []
                   if item.get("sequence") == change.item_sequence]
    else:
        targets = [updated.get("code")]
    meaning = cpt_codes().get(change.to_code)
    for concept in targets:
        for coding in (concept or {}).get("coding") or []:
            # The sender's spelling of CPT (URI or OID) stays: only the code and its display change.
            if canonical_system(coding.get("system")) == CPT_SYSTEM and coding.get("code") == change.from_code:
                coding["code"] = change.to_code
                if meaning:
                    coding["display"] = meaning.meaning
                else:
                    coding.pop("display", None)
        if concept and "text" in concept:
            # The old text would contradict the new code.
            concept.pop("text")
    return updated


# The resources a suggestion hands back: a draft order (ServiceRequest, Procedure) or the draft Claim.
SUGGESTED_RESOURCE_TYPES = ("ServiceRequest", "Procedure", "Claim")


# The models are imported lazily, and a worker imports them in a background warm-up while it already serves
# (see ``warm_up``): two threads importing the same modules at once can meet Python's import-deadlock check
# (``_DeadlockError``). One thread at a time imports or validates; validation holds the GIL anyway.
_MODELS_LOCK = threading.Lock()


def load_suggestion_models() -> None:
    """Import the ``fhir.resources`` models ``fhir_problem`` validates with (each worker does it in a background
    warm-up once it serves, so no clinician's first suggestion waits for the import): those of the suggested
    resources and of every element they can hold. A model imports its elements' models only when it first
    validates one, and the warm-up's own suggestion is an order's: a worker's first Claim suggestion waited
    for a dozen more modules (a tenth of a second and more)."""
    with _MODELS_LOCK:
        from fhir.resources.R4B import get_fhir_model_class

        table = fhir_types()
        pending, loaded = list(SUGGESTED_RESOURCE_TYPES), set()
        while pending:
            type_name = pending.pop()
            if type_name in loaded:
                continue
            loaded.add(type_name)
            for attribute in get_fhir_model_class(type_name).model_fields:
                try:
                    element = table.element(type_name, attribute)
                except AttributeError:
                    continue  # the models' own fields (resource_type, fhir_comments), not FHIR elements
                # A contained resource's model is its resourceType's: loaded when one comes.
                if element.primitive is None and element.type != ANY_RESOURCE:
                    pending.append(element.type)


def fhir_problem(resource: dict[str, Any]) -> str | None:
    """Why ``resource`` is not a valid FHIR R4 resource (its first error, with the element's path), or None.

    The engine reads only the elements it needs (``plugin.fhir_view``); a resource we hand back to the EHR
    is checked whole, so a client's invalid element never comes back from us as a one-click change.
    """
    try:
        resource_type = resource["resourceType"]
    except (KeyError, TypeError) as error:
        return str(error) or type(error).__name__
    return element_problem(resource_type, resource)


def element_problem(type_name: str, value: Any, path: tuple[str | int, ...] = ()) -> str | None:
    """Why ``value`` is not a valid FHIR R4 ``type_name`` (a resource, or a data type or backbone element such as
    ``CodeableConcept`` or ``ClaimItem``), or None; the first error's path starts with ``path``, where
    ``value`` sits in its resource."""
    with _MODELS_LOCK:
        # Imported here, not with the module: the models cost a second of start-up that a clean request never
        # needs.
        from fhir.resources.R4B import get_fhir_model_class
        from pydantic import ValidationError

        try:
            get_fhir_model_class(type_name).model_validate(value)
        except ValidationError as error:
            first = error.errors()[0]
            return f"{'.'.join(str(part) for part in (*path, *first.get('loc', ())))}: {first.get('msg', 'invalid')}"
        except (KeyError, TypeError, ValueError) as error:
            return str(error) or type(error).__name__
        return None


@dataclass
class _Draft:
    """A draft resource as the suggestions of one hook call use it: pruned once, and validated at most once,
    however many cards suggest a change to it (validating a draft costs more than the rest of a firing call)."""

    pruned: dict[str, Any]
    uses: int  # changes still to apply: the last takes ``pruned`` itself, the others a copy
    checked: bool = False  # ``problem`` is known
    problem: str | None = None  # why ``pruned`` is not valid FHIR R4


def _drafts_to_change(findings: list[Finding], drafts: dict[str, dict[str, Any]]) -> dict[str, _Draft]:
    """Each draft the fixes of ``findings`` change, by reference, pruned, with the number of changes to it."""
    uses = Counter(f.fix.resource_ref for f in findings if f.fix is not None and f.fix.resource_ref in drafts)
    return {ref: _Draft(without_empty_values(drafts[ref]), count) for ref, count in uses.items()}


def _suggested_update(draft: _Draft, change: CodeChange, check: bool) -> tuple[dict[str, Any], str | None]:
    """``change`` applied to ``draft``, and why the update is not valid FHIR R4 (None when it is, or when not
    ``check``).

    The update of a draft that one change updates is validated whole, as before it is handed back. A draft that
    several changes update is validated once, before the first takes it, and each update then only for the
    elements its change wrote (``_update_problem``).
    """
    draft.uses -= 1
    if check and draft.uses > 0 and not draft.checked:
        draft.problem, draft.checked = fhir_problem(draft.pruned), True
    updated = _changed(draft.pruned if draft.uses == 0 else without_empty_values(draft.pruned), change)
    if not check:
        return updated, None
    return updated, _update_problem(updated, change, draft.checked and draft.problem is None)


# An element a change wrote: its path in the resource, its FHIR type, its value.
_Written = tuple[tuple[str | int, ...], str, Any]


def _changed_elements(updated: dict[str, Any], change: CodeChange) -> list[_Written] | None:
    """The elements ``change`` wrote in ``updated``, each with its path and FHIR type; None where that is not
    known (then the whole update is validated).

    A code change writes one CodeableConcept (a claim line's ``productOrService``, an order's ``code``); a merge
    also rewrites the line it keeps (its sequences and quantity) and drops the others from ``item``.
    """
    resource_type = updated.get("resourceType")
    if change.item_sequence is None:
        if resource_type not in ("ServiceRequest", "Procedure"):
            return None
        return [(("code",), "CodeableConcept", updated["code"])] if "code" in updated else []
    if resource_type != "Claim":
        return None
    lines = [(index, item) for index, item in enumerate(updated.get("item") or [])
             if item.get("sequence") == change.item_sequence]
    if change.merged_items:
        return [(("item", index), "ClaimItem", item) for index, item in lines]
    return [(("item", index, "productOrService"), "CodeableConcept", item["productOrService"])
            for index, item in lines if "productOrService" in item]


def _update_problem(updated: dict[str, Any], change: CodeChange, draft_valid: bool) -> str | None:
    """Why ``updated`` (a draft changed by ``change``; ``draft_valid`` when the draft is known valid) is not
    valid FHIR R4, or None.

    ``fhir.resources`` validates each element from its own content and type (no model's validators look at
    its parent or siblings), and a change keeps every element it does not write, and the presence of the ones
    it writes. So a valid draft stays valid exactly when the elements the change wrote are valid where they
    sit: only those are validated (tests/test_suggestion_validation.py holds the verdict to that of validating
    the update whole). Otherwise the update is validated whole: an invalid draft's change may have replaced the
    invalid element.
    """
    parts = _changed_elements(updated, change) if draft_valid else None
    if parts is None:
        return fhir_problem(updated)
    for path, type_name, element in parts:
        if (problem := element_problem(type_name, element, path)) is not None:
            return problem
    return None


def _summary(finding: Finding) -> str:
    """The finding's summary as the rule wrote it. Rules write summaries within SUMMARY_BUDGET (a test over
    every rule and fixture holds them to it); only a programming error could pass CDS Hooks' 139, and then
    the card stays conformant, cut at a word, and the log says which rule to fix."""
    if len(finding.summary) <= MAX_SUMMARY:
        return finding.summary
    log.error("rule %s wrote a summary of %d characters", finding.rule_id, len(finding.summary))
    return shorten(finding.summary)


def _source(finding: Finding) -> dict[str, Any]:
    source: dict[str, Any] = {
        "label": SOURCE_LABEL,
        "topic": {"system": CARD_TYPE_SYSTEM, "code": str(finding.topic), "display": _TOPIC_DISPLAY[finding.topic]},
    }
    if finding.sources:
        source["url"] = finding.sources[0].url
    return source


def _detail(finding: Finding) -> str:
    cited = "; ".join(f"[{source.title}]({source.url})" for source in finding.sources)
    rule = f"Rule **{finding.rule_id}**" + (f": {finding.rationale}" if finding.rationale else ".")
    return f"{finding.detail}\n\n{rule}" + (f" Source: {cited}." if cited else "")


def finding_card(finding: Finding, hook_instance: str, drafts: dict[str, dict[str, Any]],
                 check_drafts: bool = True, prepared: dict[str, _Draft] | None = None) -> dict[str, Any]:
    """The card for one finding; ``drafts`` holds the draft resources a fix may update, by reference.

    ``check_drafts=False`` skips validating the updated draft (``fhir_problem``) for a caller that hands no
    resource back to an EHR: ``needlecheck scan`` reports the code a line should have, not a resource.
    ``prepared``: the drafts ``cards_for`` pruned and validated once for all the call's cards.
    """
    identity = (finding.rule_id, finding.line_key)
    card: dict[str, Any] = {
        "uuid": card_uuid(hook_instance, *identity),
        "summary": _summary(finding),
        "detail": _detail(finding),
        "indicator": str(finding.severity),
        "source": _source(finding),
        "extension": {RULE_EXTENSION: finding.rule_id},
    }
    if finding.sources:
        card["links"] = [{"label": shorten(source.title, 100), "url": source.url, "type": "absolute"}
                         for source in finding.sources]
    if prepared is None:
        prepared = _drafts_to_change([finding], drafts)
    draft = prepared.get(finding.fix.resource_ref) if finding.fix else None
    updated = None
    if finding.fix is not None and draft is not None:
        updated, problem = _suggested_update(draft, finding.fix, check_drafts)
        if problem is not None:
            card["detail"] += (f"\n\nNo one-click change is offered: the draft {finding.fix.resource_ref} is not "
                               f"valid FHIR R4 ({problem}).")
            updated = None
    if finding.fix is not None and updated is not None:
        card["suggestions"] = [{
            "label": finding.fix.label,
            "uuid": card_uuid(hook_instance, *identity, "fix"),
            "actions": [{
                "type": "update",
                "description": f"{finding.fix.label} in {finding.line_label}",
                "resource": updated,
            }],
        }]
        if finding.fix.proven:
            # Only where the record's evidence proves the change; an inferred one is offered, not pushed.
            card["suggestions"][0]["isRecommended"] = True
        card["selectionBehavior"] = "at-most-one"
    if finding.severity is not Severity.INFO:
        card["overrideReasons"] = [{"system": OVERRIDE_REASON_SYSTEM, "code": code, "display": display}
                                   for code, display in OVERRIDE_REASONS]
    return card


def unchecked_card(hook_instance: str, problems: tuple[str, ...]) -> dict[str, Any]:
    """One ``info`` card naming the checks that could not run, each with the reason its data is missing."""
    listing = "\n".join(f"- {problem}" for problem in problems)
    summary = ("Not checked for want of data: one check (named in the detail)" if len(problems) == 1
               else f"Not checked for want of data: {len(problems)} checks (named in the detail)")
    return {
        "uuid": card_uuid(hook_instance, "unchecked"),
        "summary": summary,
        "detail": f"These checks were skipped because their data could not be obtained:\n\n{listing}\n\n"
                  "Every other check ran on the data that was available.",
        "indicator": "info",
        "source": {"label": SOURCE_LABEL, "topic": {"system": CARD_TYPE_SYSTEM, "code": "claim", "display": "Claim"}},
    }


def cards_for(findings: list[Finding], hook_instance: str, drafts: dict[str, dict[str, Any]],
              check_drafts: bool = True) -> list[dict[str, Any]]:
    """One card per (rule, line): a second finding of a rule about the same line adds no card."""
    if not findings:
        return []  # the usual answer, without preparing drafts for no card
    carded: dict[tuple[str, str], Finding] = {}
    for finding in findings:
        carded.setdefault((finding.rule_id, finding.line_key), finding)
    prepared = _drafts_to_change(list(carded.values()), drafts)
    return [finding_card(finding, hook_instance, drafts, check_drafts, prepared) for finding in carded.values()]
