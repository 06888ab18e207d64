"""The shipped FHIR element table is the one the pinned fhir.resources models give."""

from __future__ import annotations

import json

import pytest

from needlecheck.mappings.fhir_types import ANY_RESOURCE, TABLE_FILE, fhir_types, generate_table


def test_the_shipped_table_is_what_fhir_resources_gives() -> None:
    # After upgrading fhir.resources: python -m needlecheck.mappings.fhir_types
    assert json.loads(TABLE_FILE.read_text(encoding="utf-8")) == generate_table()


def test_elements_carry_their_json_name_cardinality_and_type() -> None:
    types = fhir_types()
    assert types.element("Coverage", "class_fhir").key == "class"
    assert types.element("Claim", "item").many and types.element("Claim", "item").type == "ClaimItem"
    assert types.element("ClaimItem", "sequence").primitive == "positive"
    assert types.element("Procedure", "performedDateTime").primitive == "datetime"
    assert types.element("Bundle", "entry").type == "BundleEntry"
    assert types.element("BundleEntry", "resource").type == ANY_RESOURCE
    assert {"Claim", "Procedure", "Bundle"} <= types.resources
    assert "CodeableConcept" not in types.resources and "Resource" not in types.resources
    with pytest.raises(AttributeError, match="Procedure has no element 'colour'"):
        types.element("Procedure", "colour")
