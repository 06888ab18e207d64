"""The resources of one hook call and the FHIR reading every extraction module shares.

``PatientRecord`` holds what the request, prefetch and the EHR's FHIR server gave us and resolves
references within it; nothing here fetches.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from fhir.resources.R4B import get_fhir_model_class
from fhir.resources.R4B.codeableconcept import CodeableConcept
from fhir.resources.R4B.reference import Reference
from fhir.resources.R4B.resource import Resource
from pydantic import ValidationError

from needlecheck.plugin.terms import Coding


def parse_resource(resource: Any) -> Resource | None:
    """A FHIR R4 model of a JSON resource, or None when it is not a valid resource."""
    try:
        return get_fhir_model_class(resource["resourceType"]).model_validate(resource)
    except (KeyError, ValueError, TypeError, ValidationError):
        return None


@dataclass
class PatientRecord:
    """The resources available for one hook call, indexed by ``Type/id`` for reference resolution.

    Resources from prefetch or searches stay JSON until a reference needs one: validating every
    earlier Procedure as a model costs more than all the rules together, and most are never resolved.
    """

    resources: dict[str, Resource] = field(default_factory=dict)
    unparsed: dict[str, dict[str, Any]] = field(default_factory=dict)
    prior_procedures: list[dict[str, Any]] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    # A claim's contained resources are siblings: a contained Procedure's "#med" points at the claim's.
    enclosing: Any = None

    def add(self, resource: Resource) -> None:
        """Make ``resource`` resolvable by its ``Type/id``."""
        if resource.id:
            self.resources[f"{resource.get_resource_type()}/{resource.id}"] = resource

    def add_json(self, resource: dict[str, Any]) -> None:
        """Keep a JSON resource from prefetch or a search; earlier Procedures also become history."""
        kind, resource_id = resource.get("resourceType"), resource.get("id")
        if not (isinstance(kind, str) and isinstance(resource_id, str)):
            return
        self.unparsed[f"{kind}/{resource_id}"] = resource
        if kind == "Procedure":
            self.prior_procedures.append(resource)

    def _by_key(self, key: str) -> Resource | None:
        if key not in self.resources and key in self.unparsed:
            parsed = parse_resource(self.unparsed.pop(key))
            if parsed is not None:
                self.resources[key] = parsed
        return self.resources.get(key)

    def all_of(self, kind: str) -> list[Resource]:
        """Every valid resource of type ``kind`` in the record (parsing the ones still kept as JSON)."""
        prefix = f"{kind}/"
        keys = [key for key in (*self.resources, *self.unparsed) if key.startswith(prefix)]
        return [resource for key in dict.fromkeys(keys) if (resource := self._by_key(key)) is not None]

    def resolve(self, reference: Reference | None, container: Any = None) -> Resource | None:
        """The resource a reference points to: contained in ``container``, or in the record."""
        if reference is None or not reference.reference:
            return None
        target = reference.reference
        if target.startswith("#"):
            for holder in (container, self.enclosing):
                for contained in getattr(holder, "contained", None) or []:
                    if contained.id == target[1:]:
                        return contained
            return None
        parts = target.rstrip("/").split("/")
        if "_history" in parts:
            parts = parts[: parts.index("_history")]
        return self._by_key("/".join(parts[-2:])) if len(parts) >= 2 else None


def as_date(value: object) -> dt.date | None:
    """The calendar date of a FHIR date or dateTime as written; partial dates have no day, so None."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return None


def codings_of(concept: CodeableConcept | None) -> tuple[Coding, ...]:
    """The codings of a CodeableConcept as engine values."""
    if concept is None:
        return ()
    return tuple(Coding(c.system, c.code, c.display) for c in concept.coding or [])
