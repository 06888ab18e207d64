"""Needlecheck: a CDS Hooks service that catches dry-needling billing errors before an order or claim is final.

The distribution installs one import namespace: ``needlecheck.plugin`` (the rule engine),
``needlecheck.mappings`` (terminology and policy data) and ``needlecheck.cds_hooks`` (the HTTP service).
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("needlecheck")
except PackageNotFoundError:  # imported from a checkout that was never installed
    __version__ = "0+unknown"
