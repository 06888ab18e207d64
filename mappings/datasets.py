"""Official data sets we may not redistribute or could not source (NCCI edits, MUEs, NCD code lists).

Each such data set is declared by the module that reads it, as a module-level ``DATASET``; an
operator drops the official files into ``<datasets dir>/<name>/`` and the service loads them at
start-up, validating every row. Until a data set is there, the rules that need it say in an ``info``
card that they could not check, and ``needlecheck rules`` lists it as missing.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from needlecheck import mappings


@dataclass(frozen=True)
class DataSetSpec:
    """An external data set: what it is, where its official files are published, how to read them."""

    name: str
    title: str
    publisher_url: str
    file_format: str
    load: Callable[[list[Path]], Any]


@cache
def dataset_specs() -> dict[str, DataSetSpec]:
    """Every data set some module of ``mappings`` declares, by name."""
    specs: dict[str, DataSetSpec] = {}
    for module_info in pkgutil.iter_modules(mappings.__path__):
        module = importlib.import_module(f"{mappings.__name__}.{module_info.name}")
        spec = getattr(module, "DATASET", None)
        if isinstance(spec, DataSetSpec):
            specs[spec.name] = spec
    return specs


def default_datasets_dir() -> Path | None:
    """``$NEEDLECHECK_DATASETS_DIR`` if set; otherwise the service settings choose."""
    value = os.environ.get("NEEDLECHECK_DATASETS_DIR")
    return Path(value) if value else None


_lock = threading.Lock()
_directory: Path | None = default_datasets_dir()
_loaded: dict[str, Any] = {}


def configure_datasets(directory: Path | None) -> None:
    """Read data sets from ``directory`` from now on (None: no external data sets)."""
    global _directory
    with _lock:
        _directory = directory
        _loaded.clear()


def datasets_dir() -> Path | None:
    """The directory data sets are read from."""
    return _directory


def dataset_files(name: str) -> list[Path]:
    """The files of data set ``name`` in the configured directory, in name order; hidden files are not data."""
    if _directory is None:
        return []
    folder = _directory / name
    if not folder.is_dir():
        return []
    return sorted(path for path in folder.iterdir() if path.is_file() and not path.name.startswith("."))


def loaded_dataset(name: str) -> Any | None:
    """The loaded data set ``name``, or None while its files are not installed.

    A malformed file raises ``MappingError`` naming the file, row and field.
    """
    with _lock:
        if name not in _loaded:
            files = dataset_files(name)
            _loaded[name] = dataset_specs()[name].load(files) if files else None
        return _loaded[name]


def load_all_datasets() -> dict[str, bool]:
    """Load every installed data set now (start-up fails on a bad row); whether each one is present."""
    return {name: loaded_dataset(name) is not None for name in dataset_specs()}


@contextmanager
def using_datasets(directory: Path | None) -> Iterator[None]:
    """Read data sets from ``directory`` inside the block; for tests and one-off checks."""
    previous = _directory
    configure_datasets(directory)
    try:
        yield
    finally:
        configure_datasets(previous)
