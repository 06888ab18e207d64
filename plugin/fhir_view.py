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
from collections.abc import Callable
from functools import lru_cache, partial
from typing import Any, TypeAlias

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


# Records repeat the same few dates (a visit's, a course's): parsing each once per process pays.
@lru_cache(maxsize=4096)
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


NOT_PLAIN = object()  # what ``json_date`` answers for a value only a view's read can name the problem of


def json_date(kind: str, value: Any) -> Any:
    """What a view reads for a ``date`` or ``datetime`` element (``kind``) whose JSON value is ``value`` (None when
    absent), or ``NOT_PLAIN`` when that read would raise InvalidFhir: for code that reads JSON straight."""
    if value is None:
        return None
    if value.__class__ is not str:
        return NOT_PLAIN
    try:
        return _date(kind, value)
    except _Problem:
        return NOT_PLAIN


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

    # Views are built by the hundred per hook call: slots for what every view has, a dict for what is read.
    __slots__ = ("__dict__", "_where", "json")
    resource_type: str  # the FHIR type of the element: ``Procedure``, ``CodeableConcept`` …

    json: Json  # the JSON this view reads (never modified)

    def __init__(self, json: Json, where: _Where) -> None:
        self.json = json
        self._where = where

    @property
    def path(self) -> str:
        """Where the element is, e.g. ``context.claim.item[0]`` (built when first asked: most never are)."""
        if not isinstance(self._where, str):
            self._where = _path_of(*self._where)
        return self._where

    def get_resource_type(self) -> str:
        """The resourceType, as ``fhir.resources`` models spell it."""
        return self.resource_type

    def __repr__(self) -> str:
        return f"FhirView({self.resource_type} at {self.path})"


# Where an element is: the path of a resource, or where its parent is, its JSON name and its index in a list.
# A chain of tuples, not a reference to the parent view: the parent holds its children, and a child holding its
# parent would make every call's views a reference cycle, left for the garbage collector to find.
_Where: TypeAlias = "str | tuple[_Where, str, int | None]"
# Checks one JSON value of an element and wraps it: (value, parent, JSON name, index) -> element.
_Reader = Callable[[Any, _Where, str, "int | None"], Any]


_PLAIN: dict[str, tuple[type, int | None]] = {
    "string": (str, None), "boolean": (bool, None), "integer": (int, None), "positive": (int, 1), "unsigned": (int, 0)}


class _Element:
    """How one element of one FHIR type is read: a descriptor on the type's view class (all of a type's
    elements are put there when its view class is made).

    It is a non-data descriptor, so a view's instance dictionary, where the first read leaves the element,
    answers every later read. Class attributes, not ``__getattr__``: Python reaches ``__getattr__`` only after
    raising and catching an AttributeError, and a class with ``__getattr__`` makes every attribute read take a
    slower path. One descriptor class per kind of element (an object, a list, a plain primitive, any other), so
    the engine's most frequent call checks nothing it need not.
    """

    __slots__ = ("key", "minimum", "name", "plain", "read", "view_class")

    def __init__(self, name: str, element: ElementType) -> None:
        self.name, self.key = name, element.key
        # A primitive whose JSON value of this Python class (not below ``minimum``) is valid as it is.
        self.plain, self.minimum = _PLAIN.get(element.primitive or "", (None, None))
        self.view_class: type[FhirView] | None = None
        if element.primitive == "string":
            self.read: _Reader = _read_string
        elif element.primitive is not None:
            self.read = partial(_read_primitive, element.primitive)
        elif element.type == ANY_RESOURCE:
            self.read = _read_resource
        else:
            self.view_class = _view_class(element.type)
            self.read = partial(_read_complex, element.type)

    def __get__(self, view: FhirView | None, owner: type[FhirView]) -> Any:
        if view is None:
            return self
        value = view.json.get(self.key)
        element = None if value is None else self.read(value, view._where, self.key, None)
        view.__dict__[self.name] = element
        return element


class _ObjectElement(_Element):
    """A single element of a complex type (``Procedure.code``): a view of its JSON object."""

    __slots__ = ()

    def __get__(self, view: FhirView | None, owner: type[FhirView]) -> Any:
        if view is None:
            return self
        value = view.json.get(self.key)
        if value is None:
            element = None
        elif value.__class__ is dict:
            element = _new_view(self.view_class)
            element.json, element._where = value, (view._where, self.key, None)
        else:
            element = self.read(value, view._where, self.key, None)
        view.__dict__[self.name] = element
        return element


class _PlainElement(_Element):
    """A single string, boolean or integer element: its JSON value as it is when its Python class fits."""

    __slots__ = ()

    def __get__(self, view: FhirView | None, owner: type[FhirView]) -> Any:
        if view is None:
            return self
        value = view.json.get(self.key)
        if value is None or (value.__class__ is self.plain and (self.minimum is None or value >= self.minimum)):
            element = value
        else:
            element = self.read(value, view._where, self.key, None)
        view.__dict__[self.name] = element
        return element


class _ListElement(_Element):
    """An element that repeats (``Claim.item``): a list (empty when absent)."""

    __slots__ = ()

    def __get__(self, view: FhirView | None, owner: type[FhirView]) -> Any:
        if view is None:
            return self
        value = view.json.get(self.key)
        if value is None:
            element: list[Any] = []
        elif value.__class__ is not list:
            raise InvalidFhir(_path_of(view._where, self.key, None), "must be a list")
        else:
            where, key, view_class, read = view._where, self.key, self.view_class, self.read
            element = []
            for index, item in enumerate(value):
                if view_class is not None and item.__class__ is dict:
                    child = _new_view(view_class)
                    child.json, child._where = item, (where, key, index)
                    element.append(child)
                else:
                    element.append(read(item, where, key, index))
        view.__dict__[self.name] = element
        return element


def _element(name: str, element: ElementType) -> _Element:
    if element.many:
        return _ListElement(name, element)
    if element.primitive is None:
        return _ObjectElement(name, element) if element.type != ANY_RESOURCE else _Element(name, element)
    if element.primitive in _PLAIN:
        return _PlainElement(name, element)
    return _Element(name, element)


def _path_of(parent: _Where, key: str, index: int | None) -> str:
    base = parent if isinstance(parent, str) else _path_of(*parent)
    return f"{base}.{key}" if index is None else f"{base}.{key}[{index}]"


_VIEW_CLASSES: dict[str, type[FhirView]] = {}


# Views the descriptors make are made without the Python frame of ``FhirView.__init__`` (dozens a call): the
# instance, then its two slots.
_new_view: Callable[[type[FhirView]], Any] = object.__new__


def _view_class(type_name: str) -> type[FhirView]:
    """The view class of one FHIR type (made on first use), with a descriptor for each of its elements: they
    are shared by its views. An element's own type gets its class when the element is first read."""
    view_class = _VIEW_CLASSES.get(type_name)
    if view_class is None:
        view_class = _VIEW_CLASSES[type_name] = type(
            f"{type_name}View", (FhirView,), {"__slots__": (), "resource_type": type_name})
        for name in _TYPES.element_names(type_name):
            setattr(view_class, name, _LazyElement(name))
    return view_class


class _LazyElement:
    """Stands for an element until it is first read, when it puts the element's descriptor in its place: a
    type's view class is made before its elements' own types need classes (types nest, and some recursively)."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __get__(self, view: FhirView | None, owner: type[FhirView]) -> Any:
        element = _element(self.name, _TYPES.element(owner.resource_type, self.name))
        setattr(owner, self.name, element)
        return element.__get__(view, owner)


def _read_string(value: Any, parent: _Where, key: str, index: int | None) -> Any:
    if isinstance(value, str):
        return value
    raise InvalidFhir(_path_of(parent, key, index), f"must be a FHIR string, not {type(value).__name__}")


def _read_primitive(kind: str, value: Any, parent: _Where, key: str, index: int | None) -> Any:
    try:
        return _primitive(kind, value)
    except _Problem as problem:
        raise InvalidFhir(_path_of(parent, key, index), str(problem)) from None


def _read_complex(type_name: str, value: Any, parent: _Where, key: str, index: int | None) -> Any:
    if isinstance(value, dict):
        return (_VIEW_CLASSES.get(type_name) or _view_class(type_name))(value, (parent, key, index))
    raise InvalidFhir(_path_of(parent, key, index), "must be an object")


def _read_resource(value: Any, parent: _Where, key: str, index: int | None) -> Any:
    if not isinstance(value, dict):
        raise InvalidFhir(_path_of(parent, key, index), "must be an object")
    kind = value.get("resourceType")
    if not (isinstance(kind, str) and kind in _TYPES.resources):
        kind = resource_type_of(kind, _path_of(parent, key, index))  # raises InvalidFhir
    return _view_class(kind)(value, (parent, key, index))


# The view classes of the resource types ``view_of`` has met: a resource of one of them is viewed without a check.
_RESOURCE_VIEWS: dict[str, type[FhirView]] = {}


def view_of(resource: Any, path: str | None = None) -> FhirView:
    """A view of a JSON resource; ``path`` says where it is (default: its ``Type/id``). InvalidFhir when it
    is not an object with a known resourceType."""
    if resource.__class__ is dict and path is not None:
        # Every resource of every call comes here: one of a type seen before, without the Python frame of
        # ``FhirView.__init__``.
        kind = resource.get("resourceType")
        view_class = _RESOURCE_VIEWS.get(kind) if kind.__class__ is str else None
        if view_class is not None:
            view = _new_view(view_class)
            view.json, view._where = resource, path
            return view  # type: ignore[no-any-return]
    return _checked_view_of(resource, path)


def _checked_view_of(resource: Any, path: str | None) -> FhirView:
    if not isinstance(resource, dict):
        raise InvalidFhir(path or "resource", "must be a FHIR resource (a JSON object)")
    if path is None:
        path = "/".join(str(resource[key]) for key in ("resourceType", "id") if key in resource) or "resource"
    kind = resource.get("resourceType")
    if not (kind.__class__ is str and kind in _TYPES.resources):
        kind = resource_type_of(kind, path)  # raises InvalidFhir
    view_class = _RESOURCE_VIEWS[kind] = _VIEW_CLASSES.get(kind) or _view_class(kind)
    return view_class(resource, path)


def is_resource(value: Any, *resource_types: str) -> bool:
    """Whether ``value`` is a view of a resource of one of ``resource_types``."""
    return isinstance(value, FhirView) and value.resource_type in resource_types
