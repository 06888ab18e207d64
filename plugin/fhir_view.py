"""Reading FHIR R4 JSON the way the engine needs it: by the element names of ``fhir.resources``, checked on read.

Building a ``fhir.resources`` model validates every element of a resource, which costs more than all the
rules together and is mostly wasted: a hook call reads a few dozen elements of the resources it is given. A
``FhirView`` wraps the JSON instead and checks an element against its FHIR type (from the element table
``mappings.fhir_types`` derives from the ``fhir.resources`` models) only when the engine reads it. A wrong type
raises
``InvalidFhir`` naming the element's path, e.g. ``context.claim.item[0].quantity.value``, so the service still
answers 400 with the field.

What is never read is never checked: the EHR that sent it is the system of record, and an element that cannot
change the decision is not ours to reject.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from needlecheck.mappings.fhir_types import ANY_RESOURCE, ElementType, fhir_types

Json = dict[str, Any]


# Loaded with the module (a few milliseconds): every element read looks it up.
_TYPES = fhir_types()


class InvalidFhir(ValueError):
    """An element read from a resource is not valid FHIR R4; ``path`` names it."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
        self.message = message


_DATE = re.compile(r"\d{4}(-\d{2}(-\d{2})?)?")
_TIME = re.compile(r"\d{2}:\d{2}:\d{2}(\.\d+)?")
_DATE_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})")


class _Problem(Exception):
    """What is wrong with a value, before the caller names where it is (paths are built only on error)."""


def _primitive(kind: str, value: Any) -> Any:
    """A JSON primitive checked against its FHIR type; dates become ``datetime.date``/``datetime``."""
    if kind == "string":
        if isinstance(value, str):
            return value
    elif kind in ("integer", "positive", "unsigned"):
        if isinstance(value, int) and not isinstance(value, bool):
            if kind == "positive" and value < 1:
                raise _Problem("must be a positive integer")
            if kind == "unsigned" and value < 0:
                raise _Problem("must not be negative")
            return value
    elif kind == "decimal":
        if isinstance(value, int | float) and not isinstance(value, bool):
            return value
    elif kind == "boolean":
        if isinstance(value, bool):
            return value
    elif kind == "time":
        if isinstance(value, str) and _TIME.fullmatch(value):
            return value
    elif isinstance(value, str):
        return _date(kind, value)
    raise _Problem(f"must be a FHIR {kind}, not {type(value).__name__}")


def _date(kind: str, value: str) -> Any:
    """A FHIR date or dateTime: a full date is a ``date``, a time makes it a ``datetime``; a partial date
    (year, year-month) stays as written, since it names no day."""
    try:
        if "T" in value and kind == "datetime" and _DATE_TIME.fullmatch(value):
            return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        if _DATE.fullmatch(value):
            return dt.date.fromisoformat(value) if len(value) == 10 else value
    except ValueError:
        pass
    raise _Problem(f"'{value}' is not a FHIR {kind}")


def resource_type_of(value: Any, path: str) -> str:
    """``value``'s resourceType; InvalidFhir when it is not a FHIR R4 resource type."""
    if isinstance(value, str) and value in _TYPES.resources:
        return value
    raise InvalidFhir(f"{path}.resourceType", f"'{value}' is not a FHIR R4 resource type")


class FhirView:
    """A read-only view of one FHIR JSON element (a resource, a datatype or a backbone element).

    Attributes are the elements of the ``fhir.resources`` model of the same type, so ``view.code.coding``
    reads as it does on a model; an absent element is None (a list element: an empty list). Each element is
    checked and wrapped once, on first read.
    """

    resource_type: str  # the FHIR type of the element: ``Procedure``, ``CodeableConcept``, ``ClaimItem`` …

    def __init__(self, json: Json, type_name: str, where: str | _Where) -> None:
        self._json = json
        self._where = where
        self.resource_type = type_name

    @property
    def json(self) -> Json:
        """The JSON this view reads (never modified)."""
        return self._json

    @property
    def path(self) -> str:
        """Where the element is, e.g. ``context.claim.item[0]`` (built when first asked: most never are)."""
        if not isinstance(self._where, str):
            self._where = _path_of(*self._where)
        return self._where

    def get_resource_type(self) -> str:
        """The resourceType, as ``fhir.resources`` models spell it."""
        return self.resource_type

    def __getattr__(self, name: str) -> Any:
        # Called only for an element not read yet: once read, it is an instance attribute.
        if name.startswith("_"):
            raise AttributeError(name)
        value = self.__dict__[name] = self._element(name)
        return value

    def _element(self, name: str) -> Any:
        element = _TYPES.element(self.resource_type, name)
        value = self._json.get(element.key)
        if value is None:
            return [] if element.many else None
        if not element.many:
            return _item(element, value, (self, element.key, None))
        if not isinstance(value, list):
            raise InvalidFhir(_path_of(self, element.key, None), "must be a list")
        return [_item(element, item, (self, element.key, index)) for index, item in enumerate(value)]

    def __repr__(self) -> str:
        return f"FhirView({self.resource_type} at {self.path})"


# Where a child element is: its parent, its JSON name and its index in a list.
_Where = tuple[FhirView, str, "int | None"]


def _path_of(parent: FhirView, key: str, index: int | None) -> str:
    return f"{parent.path}.{key}" if index is None else f"{parent.path}.{key}[{index}]"


def _item(element: ElementType, value: Any, where: _Where) -> Any:
    if (kind := element.primitive) is not None:
        try:
            return _primitive(kind, value)
        except _Problem as problem:
            raise InvalidFhir(_path_of(*where), str(problem)) from None
    if not isinstance(value, dict):
        raise InvalidFhir(_path_of(*where), "must be an object")
    if element.type != ANY_RESOURCE:
        return FhirView(value, element.type, where)
    if isinstance(resource_type := value.get("resourceType"), str) and resource_type in _TYPES.resources:
        return FhirView(value, resource_type, where)
    return FhirView(value, resource_type_of(resource_type, _path_of(*where)), where)  # raises InvalidFhir


def view_of(resource: Any, path: str | None = None) -> FhirView:
    """A view of a JSON resource; ``path`` says where it is (default: its ``Type/id``). InvalidFhir when it
    is not an object with a known resourceType."""
    if not isinstance(resource, dict):
        raise InvalidFhir(path or "resource", "must be a FHIR resource (a JSON object)")
    if path is None:
        path = "/".join(str(resource[key]) for key in ("resourceType", "id") if key in resource) or "resource"
    return FhirView(resource, resource_type_of(resource.get("resourceType"), path), path)


def is_resource(value: Any, *resource_types: str) -> bool:
    """Whether ``value`` is a view of a resource of one of ``resource_types``."""
    return isinstance(value, FhirView) and value.resource_type in resource_types
