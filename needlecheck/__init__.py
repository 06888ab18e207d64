"""Needlecheck: a CDS Hooks service that catches dry-needling billing errors before an order or claim is final.

The distribution installs one import namespace: ``needlecheck.plugin`` (the rule engine),
``needlecheck.mappings`` (terminology and policy data) and ``needlecheck.cds_hooks`` (the HTTP service).
"""

from typing import Any


def __getattr__(name: str) -> Any:
    # ``__version__`` is read from the installed metadata only when asked for: importing importlib.metadata
    # (and the email package it parses metadata with) costs ~30 ms on every start of every command.
    if name != "__version__":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib.metadata import PackageNotFoundError, version

    try:
        value = version("needlecheck")
    except PackageNotFoundError:  # imported from a checkout that was never installed
        value = "0+unknown"
    globals()["__version__"] = value
    return value
