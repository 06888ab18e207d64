"""Policy and coding sources that findings cite, keyed by the ids of the billing rule catalog."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

import yaml

from needlecheck.mappings.errors import MappingError
from needlecheck.mappings.tables import DATA_DIR

SOURCES_DIR = DATA_DIR / "policy_sources"


@dataclass(frozen=True)
class PolicySource:
    """A document a rule rests on."""

    source_id: str
    title: str
    url: str
    statement: str
    confidence: str


#: libyaml's safe loader (in PyYAML's wheels) where built: it reads YAML ten times faster than the pure-Python one.
SAFE_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_policy_sources(path: Path) -> dict[str, PolicySource]:
    """Read and validate one sources file: every entry needs a title, an https URL and a statement."""
    try:
        document = yaml.load(path.read_text(encoding="utf-8"), Loader=SAFE_YAML_LOADER) or {}
    except OSError as error:
        raise MappingError(str(path), None, None, f"cannot be read: {error.strerror or error}") from error
    except yaml.YAMLError as error:
        raise MappingError(path.name, None, None, f"not valid YAML: {error}") from error
    if not isinstance(document, dict):
        raise MappingError(path.name, None, None, "must be a mapping of source id to source")
    sources: dict[str, PolicySource] = {}
    for source_id, entry in document.items():
        if not isinstance(entry, dict):
            raise MappingError(path.name, None, str(source_id), "must be a mapping")
        for field in ("title", "url", "statement", "confidence"):
            if not str(entry.get(field) or "").strip():
                raise MappingError(path.name, None, f"{source_id}.{field}", "must not be empty")
        if not str(entry["url"]).startswith("https://"):
            raise MappingError(path.name, None, f"{source_id}.url", "must be an https URL")
        sources[str(source_id)] = PolicySource(
            source_id=str(source_id),
            title=str(entry["title"]),
            url=str(entry["url"]),
            statement=str(entry["statement"]),
            confidence=str(entry["confidence"]),
        )
    return sources


def load_source_directory(directory: Path = SOURCES_DIR) -> dict[str, PolicySource]:
    """Every ``*.yaml`` file of ``directory`` (one per subject: coding, Medicare, payers ...), merged.

    An id defined in two files is an error: a finding must cite one document. A missing or empty folder is an
    error too (an incomplete installation), never an empty set: every table row cites a source.
    """
    if not directory.is_dir():
        raise MappingError(str(directory), None, None, "folder is missing (the installation is incomplete)")
    paths = sorted(directory.glob("*.yaml"))
    if not paths:
        raise MappingError(str(directory), None, None, "folder holds no *.yaml sources file")
    sources: dict[str, PolicySource] = {}
    for path in paths:
        for source_id, source in load_policy_sources(path).items():
            if source_id in sources:
                raise MappingError(path.name, None, source_id, "is already defined in another sources file")
            sources[source_id] = source
    return sources


@cache
def policy_sources() -> dict[str, PolicySource]:
    """The sources shipped in ``mappings/policy_sources/``, loaded once per process."""
    return load_source_directory()


def policy_source(source_id: str) -> PolicySource:
    """One source by id; a rule naming an unknown id is a programming error caught by the tests."""
    return policy_sources()[source_id]
