"""The provenance columns our rule tables share: which policy sources a row rests on, and how sure it is."""

from __future__ import annotations

from pathlib import Path

from needlecheck.mappings.errors import MappingError
from needlecheck.mappings.sources import PolicySource, policy_sources
from needlecheck.mappings.tables import parse_choice

# The scale of the project's billing rule catalog, lower-cased.
CONFIDENCE_LEVELS = frozenset({"high", "medium-high", "medium", "medium-low", "low-medium", "low"})


def parse_confidence(path: Path, row_number: int, value: str, field: str = "confidence") -> str:
    """A confidence level of the catalog's scale."""
    return parse_choice(path, row_number, field, value.lower(), CONFIDENCE_LEVELS)


def parse_source_ids(path: Path, row_number: int, field: str, value: str,
                     known: dict[str, PolicySource] | None = None) -> tuple[str, ...]:
    """One or more policy source ids separated by ``;``, each defined in ``mappings/policy_sources/``.

    ``known`` defaults to the shipped sources; a row citing an id nobody defined would leave a finding
    without its document, so it stops loading.
    """
    sources = policy_sources() if known is None else known
    ids = tuple(part.strip() for part in value.split(";") if part.strip())
    if not ids:
        raise MappingError(path.name, row_number, field, "must name at least one source id")
    for source_id in ids:
        if source_id not in sources:
            raise MappingError(path.name, row_number, field, f"'{source_id}' is not a source in policy_sources/")
    return ids
