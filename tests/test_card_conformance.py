"""The conformance validator itself must catch what it claims to catch."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from tests.support.card_conformance import NonConformant, assert_conformant_response

GOOD: dict[str, Any] = {
    "cards": [{
        "uuid": "6c92c176-cb5e-5409-aefe-9954fb2f2b5a",
        "summary": "Order ServiceRequest/sr-1: 3 muscles treated, so bill 20561, not 20560",
        "indicator": "warning",
        "source": {"label": "Needlecheck", "topic": {"system": "http://x.org/t", "code": "claim"},
                   "url": "https://example.org/policy"},
        "suggestions": [{"label": "Change", "uuid": "a2a13d73-aa73-5bdc-b527-5a313b674221", "isRecommended": True,
                         "actions": [{"type": "update", "description": "Change the code", "resource": {
                             "resourceType": "ServiceRequest", "id": "sr-1", "status": "draft", "intent": "order",
                             "subject": {"reference": "Patient/1"}}}]}],
        "selectionBehavior": "at-most-one",
        "overrideReasons": [{"system": "urn:x", "code": "a", "display": "A"}],
    }]
}


def test_a_good_response_passes() -> None:
    assert_conformant_response(GOOD)
    assert_conformant_response({"cards": []})


@pytest.mark.parametrize(("mutate", "message"), [
    (lambda c: c.update(summary="x" * 140), "under 140"),
    (lambda c: c.update(indicator="hard-stop"), "indicator"),
    (lambda c: c.pop("uuid"), "uuid"),
    (lambda c: c["source"].pop("topic"), "topic"),
    (lambda c: c.pop("selectionBehavior"), "selectionBehavior"),
    (lambda c: c["overrideReasons"][0].pop("display"), "display"),
    (lambda c: c.update(detail=""), "empty"),
    (lambda c: c.update(links=[]), "empty"),
    (lambda c: c["suggestions"][0].pop("uuid"), "uuid"),
    (lambda c: c["suggestions"][0]["actions"][0].pop("description"), "description"),
    (lambda c: c["suggestions"][0]["actions"][0]["resource"].update(status=None), "empty"),
    (lambda c: c["suggestions"][0]["actions"][0]["resource"].pop("subject"), "valid FHIR"),
    (lambda c: c.update(links=[{"label": "l", "url": "https://a.org", "type": "absolute", "appContext": "x"}]),
     "appContext"),
])
def test_each_rule_is_enforced(mutate: Any, message: str) -> None:
    body = copy.deepcopy(GOOD)
    mutate(body["cards"][0])
    with pytest.raises(NonConformant, match=message):
        assert_conformant_response(body)


def test_duplicate_uuids_are_caught() -> None:
    body = copy.deepcopy(GOOD)
    body["cards"].append(copy.deepcopy(body["cards"][0]))
    with pytest.raises(NonConformant, match="unique"):
        assert_conformant_response(body)
