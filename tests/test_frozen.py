"""``built_at_once`` builds the same frozen dataclass instances as the dataclass's own ``__init__``."""

from __future__ import annotations

import dataclasses
import datetime as dt
import inspect
from dataclasses import dataclass, field

import pytest

from needlecheck.plugin.context import BillingContext, ServiceLine
from needlecheck.plugin.frozen import built_at_once


@dataclass(frozen=True)
class _Plain:
    name: str
    count: int = 1
    tags: tuple[str, ...] = ()
    extra: dict[str, int] = field(default_factory=dict)


@built_at_once
@dataclass(frozen=True)
class _Fast:
    name: str
    count: int = 1
    tags: tuple[str, ...] = ()
    extra: dict[str, int] = field(default_factory=dict)


@pytest.mark.parametrize(("args", "kwargs"), [
    (("a",), {}), (("a", 3), {}), (("a",), {"tags": ("x",)}), (("a", 2, ("y",), {"k": 1}), {}),
    ((), {"name": "b", "extra": {"z": 2}})])
def test_the_same_fields_as_the_dataclass_init(args: tuple, kwargs: dict) -> None:
    plain, fast = _Plain(*args, **kwargs), _Fast(*args, **kwargs)
    assert dataclasses.asdict(plain) == dataclasses.asdict(fast)
    assert repr(plain).replace("_Plain", "_Fast") == repr(fast)


def test_the_same_signature_and_errors() -> None:
    assert inspect.signature(_Plain.__init__).parameters.keys() == inspect.signature(_Fast.__init__).parameters.keys()
    with pytest.raises(TypeError):
        _Fast()  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        _Fast("a", nope=1)  # type: ignore[call-arg]


def test_a_default_factory_makes_a_new_value_each_time() -> None:
    one, two = _Fast("a"), _Fast("b")
    assert one.extra == {} and one.extra is not two.extra


def test_still_frozen_hashable_and_replaceable() -> None:
    fast = _Fast("a", tags=("x",))
    with pytest.raises(dataclasses.FrozenInstanceError):
        fast.name = "b"  # type: ignore[misc]
    assert fast == _Fast("a", tags=("x",))
    line = ServiceLine("k", "label", "ServiceRequest/1", "20560", None, modifiers=("59",))
    assert hash(line) == hash(ServiceLine("k", "label", "ServiceRequest/1", "20560", None, modifiers=("59",)))
    assert dataclasses.replace(fast, count=5) == _Fast("a", 5, ("x",))


def test_the_context_classes_keep_their_cached_properties() -> None:
    line = ServiceLine("k", "label", "ServiceRequest/1", "20560", None)
    context = BillingContext("order-sign", "p1", (line,), dt.date(2026, 4, 14))
    assert context.dry_needling_lines == (line,) and line.muscles.muscles == ()
    assert context.options == BillingContext("order-sign", "p1", (), dt.date(2026, 4, 14)).options


def test_refuses_what_it_cannot_build() -> None:
    @dataclass
    class Mutable:
        name: str

    @dataclass(frozen=True)
    class Checked:
        name: str

        def __post_init__(self) -> None:
            pass

    for cls in (Mutable, Checked):
        with pytest.raises(TypeError):
            built_at_once(cls)
