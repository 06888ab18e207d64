"""A validator for CDS Hooks 2.0.1 responses, applied to every response any test produces.

It checks what the spec and the Da Vinci CRD/Inferno checks require of cards: summary under 140
characters, indicator, source with label/topic/url, uuids, selectionBehavior with suggestions,
override reasons with display, actions with description and a whole FHIR resource, links, and no
null/empty values anywhere (an empty ``cards`` array is the one exception).
"""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import urlsplit

from fhir.resources.R4B import get_fhir_model_class

INDICATORS = {"info", "warning", "critical"}
SELECTION = {"at-most-one", "any"}
ACTION_TYPES = {"create", "update", "delete"}


class NonConformant(AssertionError):
    """A response breaks a CDS Hooks rule; the message gives the JSON path."""


def _fail(path: str, problem: str) -> None:
    raise NonConformant(f"{path}: {problem}")


def find_empty_values(value: Any, path: str = "$") -> list[str]:
    """Paths of null, "", [] and {} values (CDS Hooks: such elements SHALL be omitted)."""
    if value is None or value == "" or value == [] or value == {}:
        return [path]
    found: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            found.extend(find_empty_values(item, f"{path}.{key}"))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found.extend(find_empty_values(item, f"{path}[{index}]"))
    return found


def _absolute_url(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def _uuid(value: Any, path: str) -> str:
    if not isinstance(value, str):
        _fail(path, "uuid is required")
    try:
        uuid.UUID(value)
    except ValueError:
        _fail(path, f"'{value}' is not a UUID")
    return value


def _coding(value: Any, path: str, display_required: bool) -> None:
    if not (isinstance(value, dict) and isinstance(value.get("system"), str) and isinstance(value.get("code"), str)):
        _fail(path, "a Coding needs system and code")
    if display_required and not isinstance(value.get("display"), str):
        _fail(path, "display is required")


def _action(action: Any, path: str) -> None:
    if not isinstance(action, dict):
        _fail(path, "an action must be an object")
    if action.get("type") not in ACTION_TYPES:
        _fail(f"{path}.type", f"must be one of {sorted(ACTION_TYPES)}")
    if not isinstance(action.get("description"), str):
        _fail(f"{path}.description", "is required")
    if action["type"] in ("create", "update"):
        resource = action.get("resource")
        if not isinstance(resource, dict) or not isinstance(resource.get("resourceType"), str):
            _fail(f"{path}.resource", "a create/update carries a whole FHIR resource")
        try:
            get_fhir_model_class(resource["resourceType"]).model_validate(resource)
        except Exception as error:
            _fail(f"{path}.resource", f"not a valid FHIR R4 resource: {str(error)[:200]}")
    elif not isinstance(action.get("resourceId"), str) or "/" not in action["resourceId"]:
        _fail(f"{path}.resourceId", "a delete names Type/id")


def _card(card: Any, path: str, uuids: set[str]) -> None:
    if not isinstance(card, dict):
        _fail(path, "a card must be an object")
    summary = card.get("summary")
    if not isinstance(summary, str) or not summary.strip():
        _fail(f"{path}.summary", "is required")
    if len(summary) >= 140:
        _fail(f"{path}.summary", f"{len(summary)} characters; must be under 140")
    if card.get("indicator") not in INDICATORS:
        _fail(f"{path}.indicator", f"must be one of {sorted(INDICATORS)}")
    if "detail" in card and not isinstance(card["detail"], str):
        _fail(f"{path}.detail", "must be Markdown text")
    source = card.get("source")
    if not isinstance(source, dict) or not isinstance(source.get("label"), str):
        _fail(f"{path}.source.label", "is required")
    _coding(source.get("topic"), f"{path}.source.topic", display_required=False)
    if "url" in source and not _absolute_url(source["url"]):
        _fail(f"{path}.source.url", "must be an absolute URL")
    card_id = _uuid(card.get("uuid"), f"{path}.uuid")
    if card_id in uuids:
        _fail(f"{path}.uuid", "is not unique in the response")
    uuids.add(card_id)
    suggestions = card.get("suggestions")
    if suggestions is not None:
        if not isinstance(suggestions, list):
            _fail(f"{path}.suggestions", "must be an array")
        if card.get("selectionBehavior") not in SELECTION:
            _fail(f"{path}.selectionBehavior", "is required when there are suggestions")
        recommended = 0
        for index, suggestion in enumerate(suggestions):
            where = f"{path}.suggestions[{index}]"
            if not isinstance(suggestion, dict) or not isinstance(suggestion.get("label"), str):
                _fail(f"{where}.label", "is required")
            suggestion_id = _uuid(suggestion.get("uuid"), f"{where}.uuid")
            if suggestion_id in uuids:
                _fail(f"{where}.uuid", "is not unique in the response")
            uuids.add(suggestion_id)
            recommended += bool(suggestion.get("isRecommended"))
            actions = suggestion.get("actions")
            if actions is not None:
                if not isinstance(actions, list) or not actions:
                    _fail(f"{where}.actions", "must be a non-empty array")
                for position, action in enumerate(actions):
                    _action(action, f"{where}.actions[{position}]")
        if card["selectionBehavior"] == "at-most-one" and recommended > 1:
            _fail(f"{path}.suggestions", "at-most-one allows one recommended suggestion")
    elif "selectionBehavior" in card:
        _fail(f"{path}.selectionBehavior", "only with suggestions")
    for index, reason in enumerate(card.get("overrideReasons") or []):
        _coding(reason, f"{path}.overrideReasons[{index}]", display_required=True)
    for index, link in enumerate(card.get("links") or []):
        where = f"{path}.links[{index}]"
        if not isinstance(link, dict) or not isinstance(link.get("label"), str) or not _absolute_url(link.get("url")):
            _fail(where, "a link needs label and an absolute url")
        if link.get("type") not in ("absolute", "smart"):
            _fail(f"{where}.type", "must be absolute or smart")
        if link["type"] == "absolute" and "appContext" in link:
            _fail(f"{where}.appContext", "only smart links carry appContext")


def assert_conformant_response(body: Any) -> None:
    """Raise NonConformant unless ``body`` is a conformant CDS Hooks service response."""
    if not isinstance(body, dict) or not isinstance(body.get("cards"), list):
        _fail("$", "a response is an object with a cards array")
    empty = [path for key, value in body.items() if key != "cards" for path in find_empty_values(value, f"$.{key}")]
    for index, card in enumerate(body["cards"]):
        empty.extend(find_empty_values(card, f"$.cards[{index}]"))
    if empty:
        _fail(empty[0], "null or empty values must be omitted")
    uuids: set[str] = set()
    for index, card in enumerate(body["cards"]):
        _card(card, f"$.cards[{index}]", uuids)
    for index, action in enumerate(body.get("systemActions") or []):
        _action(action, f"$.systemActions[{index}]")
