"""Frozen dataclasses that a hook call builds by the dozen, built at the cost of a plain class.

A frozen dataclass's ``__init__`` sets each field through ``object.__setattr__`` (its own ``__setattr__``
refuses): a Python call per field, 17 for a ``ServiceLine``. ``built_at_once`` gives the class an ``__init__``
that hands the instance its whole dictionary in one call instead; everything else (equality, hashing, the
refusal to change a field, ``dataclasses.replace``) stays the dataclass's own.
"""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

C = TypeVar("C", bound=type)

_FACTORY = object()  # the default of a parameter whose field has a default_factory: made when not given


def built_at_once(cls: C) -> C:
    """``cls`` (a frozen dataclass with no ``__post_init__`` and only init fields, in ``__dict__``) with an
    ``__init__`` of the same signature that sets every field at once."""
    fields = dataclasses.fields(cls)
    if not cls.__dataclass_params__.frozen or hasattr(cls, "__post_init__") \
            or any(not f.init or f.kw_only for f in fields) or "__slots__" in cls.__dict__:
        raise TypeError(f"{cls.__name__}: built_at_once is for frozen dataclasses with init fields only")
    namespace: dict[str, Any] = {"_set": object.__setattr__, "_FACTORY": _FACTORY}
    parameters, values = [], []
    for field in fields:
        name = field.name
        if field.default is not dataclasses.MISSING:
            namespace[f"_default_{name}"] = field.default
            parameters.append(f"{name}=_default_{name}")
            values.append(f"{name!r}: {name}")
        elif field.default_factory is not dataclasses.MISSING:
            namespace[f"_factory_{name}"] = field.default_factory
            parameters.append(f"{name}=_FACTORY")
            values.append(f"{name!r}: _factory_{name}() if {name} is _FACTORY else {name}")
        else:
            parameters.append(name)
            values.append(f"{name!r}: {name}")
    source = (f"def __init__(self, {', '.join(parameters)}):\n"
              f"    _set(self, '__dict__', {{{', '.join(values)}}})\n")
    exec(source, namespace)
    init = namespace["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__doc__, init.__annotations__ = cls.__init__.__doc__, cls.__init__.__annotations__
    cls.__init__ = init  # type: ignore[misc]
    return cls
