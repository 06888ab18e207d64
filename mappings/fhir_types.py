"""The FHIR R4 element table the views read by: for each type, each element's JSON name, cardinality and type.

It is derived from the ``fhir.resources`` R4B models (the same declarations their validation uses) and shipped
as ``fhir_types.json``, so reading a request needs neither the models nor pydantic: building the model
classes a hook call touches costs a second of start-up and tens of megabytes in every process.
``python -m needlecheck.mappings.fhir_types`` writes the file again; a test keeps it equal to what the pinned
``fhir.resources`` gives.
"""

from __future__ import annotations

import json
import sys
import typing
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from needlecheck.mappings.errors import MappingError

TABLE_FILE = Path(__file__).with_name("fhir_types.json")
ANY_RESOURCE = "*"  # an element whose type is the resourceType of its JSON (``contained``, ``entry.resource``)

# The primitive kinds, by the fhir_core annotation class that marks a primitive type.
_PRIMITIVE_KINDS = {
    "String": "string", "Code": "string", "Uri": "string", "Url": "string", "Canonical": "string", "Id": "string",
    "Markdown": "string", "Oid": "string", "Uuid": "string", "UuidVersion": "string", "Xhtml": "string",
    "Base64Binary": "string", "Integer": "integer", "PositiveInt": "positive", "UnsignedInt": "unsigned",
    "Decimal": "decimal", "Boolean": "boolean", "Date": "date", "DateTime": "datetime", "Instant": "datetime",
    "Time": "time",
}


@dataclass(frozen=True)
class ElementType:
    """How one element of one FHIR type is read."""

    key: str  # the JSON name: ``class`` for the model's ``class_fhir``
    many: bool
    type: str  # a FHIR type name, ANY_RESOURCE, or "@" and a primitive kind ("@string", "@datetime" ...)
    primitive: str | None = field(init=False)  # the primitive kind; None for a complex type or a resource

    def __post_init__(self) -> None:
        # Worked out once: every read of the element asks.
        object.__setattr__(self, "primitive", self.type[1:] if self.type.startswith("@") else None)


class FhirTypes:
    """The element table: every FHIR R4 type with its elements, and which types are resources."""

    def __init__(self, table: dict[str, Any]) -> None:
        self._types: dict[str, dict[str, list[Any]]] = table["types"]
        self._read: dict[str, dict[str, ElementType]] = {}
        self.resources = frozenset(table["resources"])

    def element_names(self, type_name: str) -> tuple[str, ...]:
        """The elements of ``type_name`` by their ``fhir.resources`` names (none for an unknown type)."""
        return tuple(self._types.get(type_name, ()))

    def element(self, type_name: str, attribute: str) -> ElementType:
        """How ``type_name``'s element ``attribute`` (its ``fhir.resources`` name) is read; AttributeError when
        the type has no such element."""
        try:
            return self._read[type_name][attribute]
        except KeyError:
            pass
        try:
            key, many, kind = self._types[type_name][attribute]
        except KeyError:
            raise AttributeError(f"{type_name} has no element '{attribute}'") from None
        element = self._read.setdefault(type_name, {})[attribute] = ElementType(key, bool(many), kind)
        return element


@cache
def fhir_types() -> FhirTypes:
    """The shipped element table, read once per process; MappingError when it is missing or malformed."""
    try:
        table = json.loads(TABLE_FILE.read_text(encoding="utf-8"))
        return FhirTypes(table)
    except OSError as error:
        raise MappingError(TABLE_FILE.name, None, None, f"cannot be read: {error.strerror or error}") from error
    except (ValueError, KeyError, TypeError) as error:
        raise MappingError(TABLE_FILE.name, None, None, f"is not a FHIR element table: {error}") from error


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


def _element_type(annotation: Any) -> tuple[str, bool]:
    from fhir_core.types import FhirBase

    item, many = _unwrap(annotation)
    if isinstance(item, type) and issubclass(item, FhirBase):
        name = item.get_model_klass().__name__
        return (ANY_RESOURCE if name in ("Resource", "DomainResource") else name), many
    markers = [type(marker).__name__ for marker in getattr(item, "__metadata__", ())]
    kind = next((_PRIMITIVE_KINDS[m] for m in reversed(markers) if m in _PRIMITIVE_KINDS), None)
    if kind is None and item is bool:
        kind = "boolean"
    if kind is None:
        raise ValueError(f"no primitive kind for {annotation!r}")
    return f"@{kind}", many


def generate_table() -> dict[str, Any]:
    """The element table of every ``fhir.resources`` R4B model (imports them all: seconds)."""
    import importlib
    import pkgutil

    import fhir.resources
    import fhir.resources.R4B as r4b
    from fhir.resources.R4B.resource import Resource
    from fhir_core.fhirabstractmodel import FHIRAbstractModel

    models: dict[str, type[FHIRAbstractModel]] = {}
    for module_info in pkgutil.iter_modules(r4b.__path__):
        if module_info.name.startswith(("fhirtypes", "tests")):
            continue
        module = importlib.import_module(f"fhir.resources.R4B.{module_info.name}")
        for value in vars(module).values():
            if not (isinstance(value, type) and issubclass(value, FHIRAbstractModel)):
                continue
            if value.__module__ == module.__name__ and models.setdefault(value.__name__, value) is not value:
                raise ValueError(f"two models are called {value.__name__}")
    types: dict[str, dict[str, list[Any]]] = {}
    for name, model in sorted(models.items()):
        fields = {}
        for attribute, declared in model.model_fields.items():
            extra = declared.json_schema_extra if isinstance(declared.json_schema_extra, dict) else {}
            if not extra.get("element_property"):
                continue  # the models' own fields (resource_type, fhir_comments), not FHIR elements
            kind, many = _element_type(declared.annotation)
            fields[attribute] = [declared.alias or attribute, int(many), kind]
        types[name] = fields
    resources = sorted(name for name, model in models.items()
                       if issubclass(model, Resource) and name not in ("Resource", "DomainResource"))
    return {"fhir.resources": fhir.resources.__version__, "resources": resources, "types": types}


def write_table(path: Path = TABLE_FILE) -> None:
    """Write the element table as compact JSON, one type a line (diffs stay readable)."""
    table = generate_table()
    lines = [f"{json.dumps(name)}: {json.dumps(fields, separators=(',', ':'))}"
             for name, fields in table["types"].items()]
    path.write_text(
        "{\n"
        f'"fhir.resources": {json.dumps(table["fhir.resources"])},\n'
        f'"resources": {json.dumps(table["resources"])},\n'
        '"types": {\n' + ",\n".join(lines) + "\n}\n}\n", encoding="utf-8")


if __name__ == "__main__":
    write_table(Path(sys.argv[1]) if len(sys.argv) > 1 else TABLE_FILE)
