"""Limits on JSON nesting depth, Bundle entries and claim lines: 400/413 with an OperationOutcome naming the setting."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from hypothesis import given, settings
from hypothesis import strategies as st

from needlecheck.cds_hooks.app import create_app
from needlecheck.cds_hooks.request_limits import RequestLimits, nesting_depth_exceeds
from needlecheck.cds_hooks.settings import Settings, SettingsError, load_settings

REQUESTS = Path(__file__).resolve().parent.parent / "fixtures" / "requests"
ORDER_SIGN = "/cds-services/dry-needling-order-sign"
CLAIM_CREATE = "/cds-services/dry-needling-claim-create"


def load_request(name: str) -> dict[str, Any]:
    """A fresh copy of a request fixture."""
    body: dict[str, Any] = json.loads((REQUESTS / name).read_text(encoding="utf-8"))
    return body


def depth(value: Any) -> int:
    """Nesting depth of a parsed JSON value: a scalar is 0, ``[]`` is 1."""
    if isinstance(value, dict):
        return 1 + max((depth(item) for item in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((depth(item) for item in value), default=0)
    return 0


def nested(levels: int) -> Any:
    """``levels`` arrays and objects inside each other, alternating."""
    value: Any = "leaf"
    for level in range(levels):
        value = [value] if level % 2 else {"x": value}
    return value


def outcome(response: Any, status: int) -> dict[str, Any]:
    """The single issue of an OperationOutcome answer with ``status``."""
    assert response.status_code == status, response.get_data(as_text=True)[:300]
    assert response.mimetype == "application/fhir+json"
    body = response.get_json()
    assert body["resourceType"] == "OperationOutcome"
    [issue] = body["issue"]
    return issue


# ------------------------------------------------------------------------------------------------ depth


JSON_WITH_AWKWARD_STRINGS = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(alphabet='[]{}"\\ ab\n', max_size=8),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(
        st.text(alphabet='[]{}"\\ab', max_size=4), children, max_size=3),
    max_leaves=20,
)


@settings(max_examples=300, derandomize=True, deadline=None)
@given(JSON_WITH_AWKWARD_STRINGS, st.integers(1, 8), st.booleans())
def test_depth_on_the_bytes_equals_the_depth_of_the_parsed_value(value: Any, limit: int, ascii_only: bool) -> None:
    # Brackets, quotes and backslashes inside strings must not count; ensure_ascii=False keeps raw text.
    document = json.dumps(value, ensure_ascii=ascii_only).encode()
    assert nesting_depth_exceeds(document, limit) == (depth(value) > limit)


JSON_WITHOUT_ESCAPES = st.recursive(
    st.none() | st.integers() | st.text(alphabet="[]{} ab", max_size=6),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(
        st.text(alphabet="[]{}ab", max_size=3), children, max_size=3),
    max_leaves=20,
)


@settings(max_examples=300, derandomize=True, deadline=None)
@given(JSON_WITHOUT_ESCAPES, st.integers(1, 8))
def test_depth_without_escapes_ignores_brackets_in_strings(value: Any, limit: int) -> None:
    # No backslash in the document: the quick path, where strings with and without brackets sit side by side.
    document = json.dumps(value).encode()
    assert b"\\" not in document
    assert nesting_depth_exceeds(document, limit) == (depth(value) > limit)


def test_a_request_at_the_depth_limit_is_answered(client: FlaskClient) -> None:
    body = load_request("order-sign/code001-20561-two-muscles.json")
    body["extension"] = {"org.example.deep": nested(RequestLimits.max_json_depth - 2)}
    assert depth(body) == RequestLimits.max_json_depth

    assert client.post(ORDER_SIGN, json=body).status_code == 200


def test_one_level_deeper_is_400_naming_the_setting(client: FlaskClient) -> None:
    body = load_request("order-sign/code001-20561-two-muscles.json")
    body["extension"] = {"org.example.deep": nested(RequestLimits.max_json_depth - 1)}

    issue = outcome(client.post(ORDER_SIGN, json=body), 400)

    assert "max_json_depth" in issue["diagnostics"]
    assert str(RequestLimits.max_json_depth) in issue["diagnostics"]


@pytest.mark.parametrize("levels", [1_000, 200_000])
def test_hostile_nesting_is_400_not_a_crash(client: FlaskClient, levels: int) -> None:
    # Deeper than the interpreter's recursion limit, and deeper than any stack would take.
    document = b'{"hook":' + b"[" * levels + b"]" * levels + b"}"

    issue = outcome(client.post(ORDER_SIGN, data=document, content_type="application/json"), 400)

    assert "max_json_depth" in issue["diagnostics"]


def test_feedback_bodies_are_depth_limited_too(client: FlaskClient) -> None:
    body = {"feedback": [nested(RequestLimits.max_json_depth)]}

    issue = outcome(client.post(f"{ORDER_SIGN}/feedback", json=body), 400)

    assert "max_json_depth" in issue["diagnostics"]


def test_brackets_in_strings_are_text_not_depth(client: FlaskClient) -> None:
    body = load_request("order-sign/code001-20561-two-muscles.json")
    body["extension"] = {"org.example.note": "[{" * 500 + '\\"]' * 10}

    assert client.post(ORDER_SIGN, json=body).status_code == 200


def test_the_depth_limit_is_a_setting(tmp_path: Path) -> None:
    app = create_app(Settings(data_dir=tmp_path, max_json_depth=12))
    body = load_request("order-sign/code001-20561-two-muscles.json")
    assert depth(body) > 12

    issue = outcome(app.test_client().post(ORDER_SIGN, json=body), 400)

    assert "more than 12 levels" in issue["diagnostics"]
    app.extensions["needlecheck.pool"].shutdown(wait=False)


# --------------------------------------------------------------------------------------- entries and lines


def with_draft_orders(count: int) -> dict[str, Any]:
    """An order-sign request whose draftOrders Bundle holds ``count`` copies of its first order."""
    body = load_request("order-sign/code001-20561-two-muscles.json")
    first = body["context"]["draftOrders"]["entry"][0]
    entries = []
    for index in range(count):
        entry = copy.deepcopy(first)
        entry["resource"]["id"] = f"nc-sr-{index}"
        entry["fullUrl"] = f"https://ehr.example.org/fhir/ServiceRequest/nc-sr-{index}"
        entries.append(entry)
    body["context"]["draftOrders"]["entry"] = entries
    return body


def with_claim_items(count: int) -> dict[str, Any]:
    """A claim-create request whose claim has ``count`` lines (copies of its existing ones)."""
    body = load_request("claim-create/code002-two-lines-20560-20561.json")
    lines = body["context"]["claim"]["item"]
    body["context"]["claim"]["item"] = [{**copy.deepcopy(lines[index % len(lines)]), "sequence": index + 1}
                                        for index in range(count)]
    return body


def test_draft_orders_at_the_entry_limit_are_checked(tmp_path: Path) -> None:
    app = create_app(Settings(data_dir=tmp_path, max_bundle_entries=20))  # priorProcedures holds 16

    response = app.test_client().post(ORDER_SIGN, json=with_draft_orders(20))

    assert response.status_code == 200
    assert len(response.get_json()["cards"]) >= 20
    app.extensions["needlecheck.pool"].shutdown(wait=False)


def test_draft_orders_over_the_entry_limit_are_413(client: FlaskClient) -> None:
    limit = RequestLimits.max_bundle_entries

    issue = outcome(client.post(ORDER_SIGN, json=with_draft_orders(limit + 1)), 413)

    assert issue["code"] == "too-long"
    assert issue["expression"] == ["context.draftOrders.entry"]
    assert "max_bundle_entries" in issue["diagnostics"]
    assert f"{limit + 1} elements" in issue["diagnostics"]


def test_a_prefetch_bundle_over_the_entry_limit_is_413(tmp_path: Path) -> None:
    app = create_app(Settings(data_dir=tmp_path, max_bundle_entries=3))
    body = load_request("claim-create/code002-prior-procedure-same-date.json")
    assert len(body["prefetch"]["priorProcedures"]["entry"]) > 3

    issue = outcome(app.test_client().post(CLAIM_CREATE, json=body), 413)

    assert issue["expression"] == ["prefetch.priorProcedures.entry"]
    assert "max_bundle_entries" in issue["diagnostics"]
    app.extensions["needlecheck.pool"].shutdown(wait=False)


def test_claim_lines_up_to_the_limit_are_checked_and_one_more_is_413(client: FlaskClient) -> None:
    limit = RequestLimits.max_claim_items

    assert client.post(CLAIM_CREATE, json=with_claim_items(limit)).status_code == 200
    issue = outcome(client.post(CLAIM_CREATE, json=with_claim_items(limit + 1)), 413)

    assert issue["expression"] == ["context.claim.item"]
    assert "max_claim_items" in issue["diagnostics"]


def test_limits_come_from_the_config_file(tmp_path: Path) -> None:
    config = tmp_path / "needlecheck.toml"
    config.write_text("max_json_depth = 40\nmax_bundle_entries = 200\nmax_claim_items = 20\n", encoding="utf-8")

    assert load_settings(config).request_limits == RequestLimits(40, 200, 20)


@pytest.mark.parametrize("setting", ["max_json_depth", "max_bundle_entries", "max_claim_items"])
def test_a_limit_below_one_is_refused(tmp_path: Path, setting: str) -> None:
    config = tmp_path / "needlecheck.toml"
    config.write_text(f"{setting} = 0\n", encoding="utf-8")

    with pytest.raises(SettingsError, match=setting):
        load_settings(config)


@pytest.mark.parametrize("value", [
    {"a": "[[[", "b": "x"}, ["", "{", "", "}"], {"[": [[], ""], "]": "]"}, ["]]]", [[[["ab"]]]], "[["],
])
def test_a_bracket_in_one_string_among_plain_ones_is_text(value: Any) -> None:
    # Strings with a bracket take the slow path; their neighbours without one must not hide them.
    document = json.dumps(value).encode()
    for limit in range(1, 7):
        assert nesting_depth_exceeds(document, limit) == (depth(value) > limit)
