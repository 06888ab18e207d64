"""Reading FHIR R4 JSON the way the engine needs it: by the element names of ``fhir.resources``, checked on read.

Building a ``fhir.resources`` model validates every element of a resource, which costs more than all the
rules together and is mostly wasted: a hook call reads a few dozen elements of the resources it is given. A
``FhirView`` wraps the JSON instead and checks an element against its FHIR type (taken from the
``fhir.resources`` model's field declarations) only when the engine reads it. A wrong type raises
``InvalidFhir`` naming the element's path, e.g. ``context.claim.item[0].quantity.value``, so the service still
answers 400 with the field.

What is never read is never checked: the EHR that sent it is the system of record, and an element that cannot
change the decision is not ours to reject.
"""

from __future__ import annotations

import datetime as dt
import re
import typing
from dataclasses import dataclass
from typing import Any

from fhir.resources.R4B import get_fhir_model_class
from fhir.resources.R4B.resource import Resource
from fhir_core.fhirabstractmodel import FHIRAbstractModel
from fhir_core.types import FhirBase
from pydantic import TypeAdapter, ValidationError

Json = dict[str, Any]


class InvalidFhir(ValueError):
    """An element read from a resource is not valid FHIR R4; ``path`` names it."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
        self.message = message


@dataclass(frozen=True)
class _Element:
    """How one element of one FHIR type is read."""

    key: str  # the JSON name: ``class`` for the model's ``class_fhir``
    many: bool
    model: type[FHIRAbstractModel] | None = None  # a complex type or backbone element
    any_resource: bool = False  # ``Resource``: the type is the JSON's resourceType
    primitive: str | None = None  # "string", "integer", "positive", "unsigned", "decimal", "boolean", "date", ...
    adapter: TypeAdapter[Any] | None = None  # any other primitive, checked by pydantic


# The primitive kinds by the fhir_core annotation class that marks them.
_PRIMITIVE_KINDS = {
    "String": "string", "Code": "string", "Uri": "string", "Url": "string", "Canonical": "string", "Id": "string",
    "Markdown": "string", "Oid": "string", "Uuid": "string", "Xhtml": "string", "Base64Binary": "string",
    "Integer": "integer", "PositiveInt": "positive", "UnsignedInt": "unsigned", "Decimal": "decimal",
    "Boolean": "boolean", "Date": "date", "DateTime": "datetime", "Instant": "datetime",
}

_DATE = re.compile(r"\d{4}(-\d{2}(-\d{2})?)?")
_DATE_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})")


def _unwrap(annotation: Any) -> tuple[Any, bool]:
    """The element's item type and whether it repeats, from ``Optional[List[X]]`` and friends."""
    many = False
    while True:
        origin, args = typing.get_origin(annotation), typing.get_args(annotation)
        if origin is typing.Union or (origin is not None and type(None) in args):
            annotation = next(a for a in args if a is not type(None))
        elif origin is list:
            annotation, many = args[0], True
        else:
            return annotation, many


_ELEMENTS: dict[type[FHIRAbstractModel], dict[str, _Element]] = {}


def _element(model: type[FHIRAbstractModel], name: str) -> _Element:
    """How ``model``'s element ``name`` is read (worked out once per type and name)."""
    try:
        return _ELEMENTS[model][name]
    except KeyError:
        element = _ELEMENTS.setdefault(model, {})[name] = _element_of(model, name)
        return element


def _element_of(model: type[FHIRAbstractModel], name: str) -> _Element:
    field = model.model_fields.get(name)
    if field is None:
        raise AttributeError(f"{model.__name__} has no element '{name}'")
    key = field.alias or name
    item, many = _unwrap(field.annotation)
    if isinstance(item, type) and issubclass(item, FhirBase):
        target = item.get_model_klass()
        return _Element(key, many, any_resource=target.__name__ == "Resource") if target.__name__ in (
            "Resource", "DomainResource") else _Element(key, many, model=target)
    markers = [type(m).__name__ for m in getattr(item, "__metadata__", ())]
    kind = next((_PRIMITIVE_KINDS[m] for m in reversed(markers) if m in _PRIMITIVE_KINDS), None)
    if kind is None and item is bool:
        kind = "boolean"
    if kind is not None:
        return _Element(key, many, primitive=kind)
    return _Element(key, many, adapter=TypeAdapter(item))


def _primitive(kind: str, value: Any, path: str) -> Any:
    """A JSON primitive checked against its FHIR type; dates become ``datetime.date``/``datetime``."""
    if kind == "string":
        if isinstance(value, str):
            return value
    elif kind in ("integer", "positive", "unsigned"):
        if isinstance(value, int) and not isinstance(value, bool):
            if kind == "positive" and value < 1:
                raise InvalidFhir(path, "must be a positive integer")
            if kind == "unsigned" and value < 0:
                raise InvalidFhir(path, "must not be negative")
            return value
    elif kind == "decimal":
        if isinstance(value, int | float) and not isinstance(value, bool):
            return value
    elif kind == "boolean":
        if isinstance(value, bool):
            return value
    elif isinstance(value, str):
        return _date(kind, value, path)
    raise InvalidFhir(path, f"must be a FHIR {kind}, not {type(value).__name__}")


def _date(kind: str, value: str, path: str) -> Any:
    """A FHIR date or dateTime: a full date is a ``date``, a time makes it a ``datetime``; a partial date
    (year, year-month) stays as written, since it names no day."""
    try:
        if "T" in value and kind == "datetime" and _DATE_TIME.fullmatch(value):
            return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        if _DATE.fullmatch(value):
            return dt.date.fromisoformat(value) if len(value) == 10 else value
    except ValueError:
        pass
    raise InvalidFhir(path, f"'{value}' is not a FHIR {kind}")


def model_of(resource_type: Any, path: str) -> type[FHIRAbstractModel]:
    """The ``fhir.resources`` R4B class of a resourceType; InvalidFhir when there is none."""
    if isinstance(resource_type, str) and resource_type[:1].isupper():
        try:
            model = get_fhir_model_class(resource_type)
        except (KeyError, ValueError, ImportError):
            pass
        else:
            if issubclass(model, Resource):
                return model
    raise InvalidFhir(f"{path}.resourceType", f"'{resource_type}' is not a FHIR R4 resource type")


class FhirView:
    """A read-only view of one FHIR JSON element (a resource, a datatype or a backbone element).

    Attributes are the elements of the ``fhir.resources`` model of the same type, so ``view.code.coding``
    reads as it does on a model; an absent element is None (a list element: an empty list). Each element is
    checked and wrapped once, on first read.
    """

    resource_type: str  # the FHIR type of the element: ``Procedure``, ``CodeableConcept``, ``ClaimItem`` …

    def __init__(self, json: Json, model: type[FHIRAbstractModel], path: str) -> None:
        self._json = json
        self._model = model
        self._path = path
        self.resource_type = model.__name__

    @property
    def json(self) -> Json:
        """The JSON this view reads (never modified)."""
        return self._json

    @property
    def path(self) -> str:
        """Where the element is, e.g. ``context.claim.item[0]``."""
        return self._path

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
        element = _element(self._model, name)
        value = self._json.get(element.key)
        path = f"{self._path}.{element.key}"
        if value is None:
            return [] if element.many else None
        if not element.many:
            return self._item(element, value, path)
        if not isinstance(value, list):
            raise InvalidFhir(path, "must be a list")
        return [self._item(element, item, f"{path}[{index}]") for index, item in enumerate(value)]

    def _item(self, element: _Element, value: Any, path: str) -> Any:
        if element.primitive is not None:
            return _primitive(element.primitive, value, path)
        if not isinstance(value, dict) and (element.model or element.any_resource):
            raise InvalidFhir(path, "must be an object")
        if element.model is not None:
            return FhirView(value, element.model, path)
        if element.any_resource:
            return FhirView(value, model_of(value.get("resourceType"), path), path)
        assert element.adapter is not None
        try:
            return element.adapter.validate_python(value)
        except ValidationError as error:
            raise InvalidFhir(path, error.errors()[0].get("msg", "invalid")) from error

    def __repr__(self) -> str:
        return f"FhirView({self.resource_type} at {self._path})"


def view_of(resource: Any, path: str | None = None) -> FhirView:
    """A view of a JSON resource; ``path`` says where it is (default: its ``Type/id``). InvalidFhir when it
    is not an object with a known resourceType."""
    if not isinstance(resource, dict):
        raise InvalidFhir(path or "resource", "must be a FHIR resource (a JSON object)")
    if path is None:
        path = "/".join(str(resource[key]) for key in ("resourceType", "id") if key in resource) or "resource"
    return FhirView(resource, model_of(resource.get("resourceType"), path), path)


def is_resource(value: Any, *resource_types: str) -> bool:
    """Whether ``value`` is a view of a resource of one of ``resource_types``."""
    return isinstance(value, FhirView) and value.resource_type in resource_types
