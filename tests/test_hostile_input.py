"""Property-based: no request a client can send makes the service answer 5xx or a non-conformant card."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "requests"
BASES = {
    "dry-needling-order-sign": json.loads((FIXTURES / "order-sign/doc002-no-laterality.json").read_text()),
    "dry-needling-claim-create": json.loads((FIXTURES / "claim-create/code002-two-lines-20560-20561.json").read_text()),
}
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=8,
)


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path into a JSON document."""
    found = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            found.extend(paths(item, (*prefix, key)))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found.extend(paths(item, (*prefix, index)))
    return found


PATHS = {service: [p for p in paths(body) if p] for service, body in BASES.items()}


@st.composite
def mutated_requests(draw: st.DrawFn) -> tuple[str, Any]:
    """A fixture request with one to three of its values replaced by arbitrary JSON, or deleted."""
    service = draw(st.sampled_from(sorted(BASES)))
    body = copy.deepcopy(BASES[service])
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(PATHS[service]))
        parent = body
        try:
            for step in path[:-1]:
                parent = parent[step]
            if draw(st.booleans()) and isinstance(parent, dict):
                parent.pop(path[-1], None)
            else:
                parent[path[-1]] = draw(JSON_VALUES)
        except (KeyError, IndexError, TypeError):
            continue
    return service, body


@settings(max_examples=300, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(mutated_requests())
def test_mutated_requests_never_cause_a_server_error(client: FlaskClient, case: tuple[str, Any]) -> None:
    service, body = case
    response = client.post(f"/cds-services/{service}", json=body)
    assert response.status_code in (200, 400, 412), response.get_data(as_text=True)[:300]
    if response.status_code != 200:
        assert response.get_json()["resourceType"] == "OperationOutcome"


@settings(max_examples=200, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(JSON_VALUES)
def test_arbitrary_feedback_bodies_are_200_or_400(client: FlaskClient, body: Any) -> None:
    response = client.post("/cds-services/dry-needling-order-sign/feedback", json=body)
    assert response.status_code in (200, 400)


@pytest.mark.parametrize(("service", "path"), [
    ("dry-needling-order-sign", ("context", "draftOrders", "entry", 0, "resource")),
    ("dry-needling-claim-create", ("context", "claim", "contained", 0)),
])
@pytest.mark.parametrize("resource_type", ["", "Nope"])
def test_an_unknown_resource_type_inside_the_context_resource_is_400(
        client: FlaskClient, service: str, path: tuple[Any, ...], resource_type: str) -> None:
    # fhir.resources raises KeyError (not a ValidationError) for these; found by schemathesis.
    body = copy.deepcopy(BASES[service])
    parent = body
    for step in path[:-1]:
        parent = parent[step]
    parent[path[-1]] = {"resourceType": resource_type}

    response = client.post(f"/cds-services/{service}", json=body)

    assert response.status_code == 400, response.get_data(as_text=True)[:300]
    assert response.get_json()["resourceType"] == "OperationOutcome"
