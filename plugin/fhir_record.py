"""The resources of one hook call and the FHIR reading every extraction module shares.

``PatientRecord`` holds what the request, prefetch and the EHR's FHIR server gave us and resolves
references within it; nothing here fetches.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from functools import partial
from typing import Any, TypeVar

from needlecheck.plugin.fhir_view import FhirView, InvalidFhir, view_of
from needlecheck.plugin.terms import Coding

Json = dict[str, Any]
T = TypeVar("T")
_NOT_YET = object()


@dataclass
class PatientRecord:
    """The resources available for one hook call, indexed by ``Type/id`` for reference resolution.

    Resources from prefetch or the FHIR server are views of their JSON (see ``plugin.fhir_view``), checked
    only where the engine reads them. One that turns out invalid where it is read is dropped with
    ``discard`` and the context built again without it, as if the server had not returned it.
    """

    resources: dict[str, FhirView] = field(default_factory=dict)
    prior_procedures: list[Json] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    invalid: list[str] = field(default_factory=list)
    # A claim's contained resources are siblings: a contained Procedure's "#med" points at the claim's.
    enclosing: FhirView | None = None
    # What ``all_of`` and ``derived`` worked out, until the record changes: the parties and documentation ask
    # again and again, once per line.
    _derived: dict[Any, Any] = field(default_factory=dict, repr=False)
    # The resources by type, in the order of ``resources``, kept as they are added (None: to be worked out again,
    # after a resource was replaced or dropped).
    _by_type: dict[str, list[FhirView]] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if not self.resources:
            self._by_type = {}

    def _index(self, key: str, resource: FhirView) -> None:
        """Keep ``resource`` under ``key`` (its ``Type/id``)."""
        resources = self.resources
        if key in resources:
            self._by_type = None  # a replaced resource keeps its place in ``resources``
        elif (by_type := self._by_type) is not None:
            found = by_type.get(resource.resource_type)
            if found is None:
                by_type[resource.resource_type] = [resource]
            else:
                found.append(resource)
        resources[key] = resource
        if self._derived:
            self._derived.clear()

    def add(self, resource: FhirView) -> None:
        """Make ``resource`` (a view of a request's resource) resolvable by its ``Type/id``."""
        if resource.id:
            self._index(f"{resource.resource_type}/{resource.id}", resource)

    def add_json(self, resource: Json) -> FhirView | None:
        """Keep a resource from prefetch or the server (earlier Procedures also become history) and return
        its view; None when it has no ``Type/id`` or no known resourceType.

        The view's path is its ``Type/id``, so an invalid element read later names the resource to discard.
        """
        kind, resource_id = resource.get("resourceType"), resource.get("id")
        if not (isinstance(kind, str) and isinstance(resource_id, str)):
            return None
        key = f"{kind}/{resource_id}"
        if self.invalid and key in self.invalid:
            return None
        try:
            view = view_of(resource, key)
        except InvalidFhir:
            self.invalid.append(key)
            return None
        self._index(key, view)
        if kind == "Procedure":
            self.prior_procedures.append(resource)
        return view

    def discard(self, error: InvalidFhir) -> bool:
        """Drop the record's resource ``error`` was raised in; False when it is none of the record's (a
        request's own resource, which is the client's to fix)."""
        key = error.path.split(".")[0]
        found = self.resources.get(key)
        if found is None or found.path != key:
            return False
        del self.resources[key]
        self._derived.clear()
        self._by_type = None
        self.invalid.append(key)
        self.prior_procedures = [p for p in self.prior_procedures if p is not found.json]
        return True

    def all_of(self, kind: str) -> tuple[FhirView, ...]:
        """Every resource of type ``kind`` in the record."""
        by_type = self._by_type
        if by_type is None:
            by_type = self._by_type = {}
            for resource in self.resources.values():
                by_type.setdefault(resource.resource_type, []).append(resource)
        found = by_type.get(kind)
        return tuple(found) if found else ()

    def derived(self, compute: Callable[..., T], *args: Hashable) -> T:
        """``compute(self, *args)``, worked out once until the record changes (a fact of the record that every
        line asks for: the encounter's state, the signer as a performer)."""
        key = (compute, *args) if args else compute
        value = self._derived.get(key, _NOT_YET)
        if value is _NOT_YET:
            value = self._derived[key] = compute(self, *args)
        return value  # type: ignore[no-any-return]

    def resolve(self, reference: FhirView | str | None, container: Any = None) -> FhirView | None:
        """The resource a reference (a Reference or its ``reference`` string) points to: contained in
        ``container`` or the claim, or in the record."""
        # ``reference_target``, without its frame: every reference the engine follows comes here.
        target = reference if isinstance(reference, str) or reference is None else reference.reference
        if not target:
            return None
        found = self.resources.get(target)  # the usual relative ``Type/id``
        if found is not None:
            return found
        if target.startswith("#"):
            for holder in (container, self.enclosing):
                for contained in getattr(holder, "contained", None) or []:
                    if contained.id == target[1:]:
                        return contained
            return None
        parts = target.rstrip("/").split("/")
        if "_history" in parts:
            parts = parts[: parts.index("_history")]
        return self.resources.get("/".join(parts[-2:])) if len(parts) >= 2 else None


def without_invalid_resources(record: PatientRecord, build: Callable[[], T]) -> T:
    """``build()``, built again without each resource of ``record`` found invalid on the way, as if it had
    never been sent; an invalid element of the request's own resource raises ``InvalidFhir``."""
    while True:
        try:
            return build()
        except InvalidFhir as error:
            if not record.discard(error):
                raise


def reference_target(reference: FhirView | str | None) -> str | None:
    """The ``reference`` string of a Reference, or the string itself."""
    return reference if isinstance(reference, str) or reference is None else reference.reference


def as_date(value: object) -> dt.date | None:
    """The calendar date of a FHIR date or dateTime as written; partial dates have no day, so None."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return None


# What ``Coding(system, code, display)`` does, without the Python frame of a named tuple's ``__new__``: the
# engine's most frequent read makes dozens a call.
_new_coding = partial(tuple.__new__, Coding)


# Where a view keeps its codings once read (not an element name: those never hold a space).
_CODINGS = " codings"


def codings_of(concept: FhirView | None) -> tuple[Coding, ...]:
    """The codings of a CodeableConcept as engine values (read once per view: a code is asked for its CPT code,
    its words, its side ...)."""
    if concept is None:
        return ()
    held: tuple[Coding, ...] | None = concept.__dict__.get(_CODINGS)
    if held is None:
        held = json_codings(concept.json)
        if held is None:
            held = tuple(Coding(c.system, c.code, c.display) for c in concept.coding)
        concept.__dict__[_CODINGS] = held
    return held


def json_codings(concept: Json) -> tuple[Coding, ...] | None:
    """``codings_of`` read straight from a CodeableConcept's JSON object; None when a coding is not plain (not an
    object, or a system, code or display that is not a string), which only the views can name.

    Every coding's system, code and display are strings in nearly every record: this is the engine's most
    frequent read.
    """
    codings = concept.get("coding")
    if not codings:
        return ()
    if codings.__class__ is not list:
        return None
    if len(codings) == 1:  # nearly every concept
        [coding] = codings
        if coding.__class__ is not dict:
            return None
        system, code, display = coding.get("system"), coding.get("code"), coding.get("display")
        if (system.__class__, code.__class__, display.__class__) not in _PLAIN_CODING:
            return None
        return (_new_coding((system, code, display)),)
    found = []
    for coding in codings:
        if coding.__class__ is not dict:
            return None
        system, code, display = coding.get("system"), coding.get("code"), coding.get("display")
        if (system.__class__, code.__class__, display.__class__) not in _PLAIN_CODING:
            return None
        found.append(_new_coding((system, code, display)))
    return tuple(found)


# The Python classes of a plain coding's system, code and display: each a string or absent.
_PLAIN_CODING = frozenset(itertools.product((str, type(None)), repeat=3))
