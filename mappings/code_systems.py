"""The spellings of one code system: FHIR URI and OID (``code_systems.csv``, sourced from HL7 THO).

EHRs with a CDA heritage send ``urn:oid:2.16.840.1.113883.6.12`` where FHIR says
``http://www.ama-assn.org/go/cpt``. Both name CPT, so the engine compares systems by their canonical
(FHIR URI) spelling, while a card that changes a code keeps the system string the sender used.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

from needlecheck.mappings.errors import MappingError
from needlecheck.mappings.provenance import parse_source_ids
from needlecheck.mappings.tables import DATA_DIR, read_table

CODE_SYSTEMS_FILE = DATA_DIR / "code_systems.csv"


@dataclass(frozen=True)
class SystemSpelling:
    """One row of ``code_systems.csv``: ``system`` names the code system whose FHIR URI is ``canonical``."""

    system: str
    canonical: str
    code_system: str
    source_ids: tuple[str, ...]


def load_code_systems(path: Path = CODE_SYSTEMS_FILE) -> dict[str, SystemSpelling]:
    """Read and validate the spellings, keyed by spelling; every canonical URI must spell itself."""
    spellings: dict[str, SystemSpelling] = {}
    for row_number, row in read_table(path, ("system", "canonical_system", "code_system", "source_id")):
        system = row["system"]
        if system in spellings:
            raise MappingError(path.name, row_number, "system", f"{system} appears twice")
        if not system.startswith(("http://", "https://", "urn:oid:")):
            raise MappingError(path.name, row_number, "system", f"'{system}' is neither a URI nor an OID URN")
        spellings[system] = SystemSpelling(system, row["canonical_system"], row["code_system"],
                                           parse_source_ids(path, row_number, "source_id", row["source_id"]))
    for spelling in spellings.values():
        if spelling.canonical not in spellings or spellings[spelling.canonical].canonical != spelling.canonical:
            raise MappingError(path.name, None, "canonical_system",
                               f"{spelling.canonical} must have a row of its own that names itself")
    return spellings


@cache
def code_system_spellings() -> dict[str, SystemSpelling]:
    """The spellings shipped in ``mappings/``, loaded once per process."""
    return load_code_systems()


@cache
def _canonical_by_spelling() -> dict[str, str]:
    return {spelling.system: spelling.canonical for spelling in code_system_spellings().values()}


def canonical_system(system: str | None) -> str | None:
    """The FHIR URI of ``system`` when it is a known spelling of a code system, else ``system`` itself."""
    # Called for nearly every coding the engine reads: one dictionary lookup.
    return _canonical_by_spelling().get(system, system)  # type: ignore[arg-type]


def spellings_of(canonical: str) -> tuple[str, ...]:
    """Every known spelling of the code system whose FHIR URI is ``canonical``, the URI first."""
    others = [s.system for s in code_system_spellings().values() if s.canonical == canonical and s.system != canonical]
    return (canonical, *others)
