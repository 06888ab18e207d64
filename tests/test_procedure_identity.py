"""``same_as_any`` answers what ``is_any_of`` does, for every mix of ids, identifiers, codes, dates and times."""

from __future__ import annotations

import datetime as dt
import itertools

from needlecheck.plugin.fhir_procedures import ProcedureIdentity, is_any_of, json_identity, same_as_any

DAY = dt.date(2026, 4, 14)


def _identities() -> list[ProcedureIdentity]:
    found = []
    for reference, local_id, identifiers, code, day, sites, moment in itertools.product(
            ("Procedure/p1", "Procedure/p2", None), (None, "p1", "c9"),
            (frozenset(), frozenset({("urn:x", "1")}), frozenset({("urn:x", "2")})),
            ("20560", "20561", None), (DAY, DAY - dt.timedelta(days=7), None), ([], [{"text": "neck"}]),
            (None, dt.datetime(2026, 4, 14, 9, tzinfo=dt.UTC))):
        found.append(ProcedureIdentity(reference, local_id, identifiers, code, day, sites, moment))
    return found


def test_same_as_any_agrees_with_is_any_of() -> None:
    identities = _identities()
    groups = [[], identities[:1], identities[100:103], identities[::97], identities[5::211]]
    for others in groups:
        is_same = same_as_any(others)
        for identity in identities:
            assert is_same(identity) == is_any_of(identity, others), (identity, others)


def test_a_billed_contained_copy_is_found_in_the_history() -> None:
    billed = json_identity({"resourceType": "Procedure", "id": "p1", "code": {"coding": [
        {"system": "http://www.ama-assn.org/go/cpt", "code": "20560"}]}, "performedDateTime": "2026-04-14"},
        contained=True)
    recorded = json_identity({"resourceType": "Procedure", "id": "p1", "code": {"coding": [
        {"system": "http://www.ama-assn.org/go/cpt", "code": "20560"}]}, "performedDateTime": "2026-04-14"})
    assert same_as_any([billed])(recorded) and is_any_of(recorded, [billed])
