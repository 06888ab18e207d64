"""Provider types from the codes a Practitioner or PractitionerRole carries (NUCC taxonomy, HL7 v2-0360).

``provider_types.csv`` has one row per code or code prefix: NUCC groups its taxonomy hierarchically
(every Allopathic & Osteopathic Physicians code starts ``20``), so a prefix row covers a classification
and all its specializations. Systems are compared without a ``|version`` suffix, which US Core examples
put on the v2-0360 system (``http://terminology.hl7.org/CodeSystem/v2-0360|2.7``).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path

from needlecheck.mappings.errors import MappingError
from needlecheck.mappings.tables import DATA_DIR, parse_choice, parse_https_url, read_table

PROVIDER_TYPES_FILE = DATA_DIR / "provider_types.csv"
NUCC_SYSTEM = "http://nucc.org/provider-taxonomy"
DEGREE_SYSTEM = "http://terminology.hl7.org/CodeSystem/v2-0360"

PROVIDER_TYPES = frozenset({
    "physician", "physician-assistant", "nurse-practitioner", "clinical-nurse-specialist", "physical-therapist",
    "physical-therapist-assistant", "chiropractor", "acupuncturist",
})
_MATCHES = frozenset({"exact", "prefix"})


@dataclass(frozen=True)
class ProviderTypeRow:
    """One row of ``provider_types.csv``."""

    system: str
    code: str
    match: str
    provider_type: str
    meaning: str
    source_title: str
    source_url: str
    confidence: str

    def covers(self, system: str, code: str) -> bool:
        """Whether a coding ``system``/``code`` (system already without its version) falls under this row."""
        if system != self.system:
            return False
        return code == self.code if self.match == "exact" else code.startswith(self.code)


def unversioned(system: str) -> str:
    """``system`` without a trailing ``|version``."""
    return system.split("|", 1)[0]


def load_provider_types(path: Path = PROVIDER_TYPES_FILE) -> tuple[ProviderTypeRow, ...]:
    """Read and validate the provider type table."""
    rows: list[ProviderTypeRow] = []
    seen: set[tuple[str, str]] = set()
    required = ("system", "code", "match", "provider_type", "meaning", "source_title", "source_url", "confidence")
    for row_number, row in read_table(path, required):
        key = (unversioned(row["system"]), row["code"])
        if key in seen:
            raise MappingError(path.name, row_number, "code", f"{row['code']} appears twice for {key[0]}")
        seen.add(key)
        rows.append(ProviderTypeRow(
            system=key[0],
            code=row["code"],
            match=parse_choice(path, row_number, "match", row["match"], _MATCHES),
            provider_type=parse_choice(path, row_number, "provider_type", row["provider_type"], PROVIDER_TYPES),
            meaning=row["meaning"],
            source_title=row["source_title"],
            source_url=parse_https_url(path, row_number, "source_url", row["source_url"]),
            confidence=row["confidence"],
        ))
    return tuple(rows)


@cache
def provider_type_rows() -> tuple[ProviderTypeRow, ...]:
    """The provider type table shipped in ``mappings/``, loaded once per process."""
    return load_provider_types()


@lru_cache(maxsize=4096)
def provider_types_of_code(system: str | None, code: str | None) -> frozenset[str]:
    """The provider types one coding says; empty when the code system or code is not in the table."""
    if not system or not code:
        return frozenset()
    bare = unversioned(system.strip())
    return frozenset(row.provider_type for row in provider_type_rows() if row.covers(bare, code.strip()))
