"""SNOMED CT muscle concepts and laterality qualifiers, loaded from the sourced CSV tables."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from pathlib import Path

from needlecheck.mappings.errors import MappingError
from needlecheck.mappings.tables import DATA_DIR, parse_choice, read_table

MUSCLES_FILE = DATA_DIR / "snomed_muscles.csv"
LATERALITY_FILE = DATA_DIR / "laterality_qualifiers.csv"


class ConceptKind(StrEnum):
    """What a SNOMED body-structure concept names, as far as muscle counting is concerned."""

    MUSCLE = "muscle"
    PART_OF_MUSCLE = "part-of-muscle"
    LATERALIZED = "lateralized"
    GROUP = "group"


class Side(StrEnum):
    """The side of the body a treated muscle is on. ``BOTH`` stands for two muscles."""

    LEFT = "left"
    RIGHT = "right"
    BOTH = "both"
    MIDLINE = "midline"
    UNSPECIFIED = "unspecified"


@dataclass(frozen=True)
class MuscleConcept:
    """One row of ``snomed_muscles.csv``."""

    sctid: str
    name: str
    canonical_muscle: str
    kind: ConceptKind
    side: Side
    source: str
    confidence: str
    # ``yes``: the code was seen beside a SNOMED CT term; ``partial`` rows (mostly UBERON's cross-references)
    # were not, so they may point a count in a direction but never decide a code change on their own.
    verified: bool = True

    @property
    def names_one_muscle(self) -> bool:
        """True when the concept identifies a single muscle (possibly a part of it, possibly sided)."""
        return self.kind is not ConceptKind.GROUP


@dataclass(frozen=True)
class MuscleCatalog:
    """Muscle concepts and laterality qualifiers, looked up by SNOMED CT concept id."""

    concepts: dict[str, MuscleConcept]
    laterality: dict[str, Side]

    def concept(self, sctid: str) -> MuscleConcept | None:
        """The muscle concept with this id, or None when the code is not a known muscle or group."""
        return self.concepts.get(sctid)

    def side_of_qualifier(self, sctid: str) -> Side | None:
        """The side a laterality qualifier value stands for, or None for an unknown qualifier."""
        return self.laterality.get(sctid)


_KINDS = frozenset(kind.value for kind in ConceptKind)
_SIDES = frozenset(side.value for side in Side)
_CONFIDENCE = frozenset({"high", "medium", "low"})
_VERIFIED = frozenset({"yes", "partial"})


def load_muscle_concepts(path: Path = MUSCLES_FILE) -> dict[str, MuscleConcept]:
    """Read and validate the muscle table; a concept id may appear only once."""
    concepts: dict[str, MuscleConcept] = {}
    required = ("sctid", "name_as_found", "canonical_muscle", "kind", "laterality", "source", "verified",
                "confidence")
    for row_number, row in read_table(path, required):
        sctid = row["sctid"]
        if not sctid.isdigit():
            raise MappingError(path.name, row_number, "sctid", f"'{sctid}' is not a SNOMED CT concept id")
        if sctid in concepts:
            raise MappingError(path.name, row_number, "sctid", f"{sctid} appears twice")
        kind = ConceptKind(parse_choice(path, row_number, "kind", row["kind"], _KINDS))
        side = Side(parse_choice(path, row_number, "laterality", row["laterality"], _SIDES))
        if (kind is ConceptKind.LATERALIZED) != (side in (Side.LEFT, Side.RIGHT)):
            raise MappingError(path.name, row_number, "laterality", "only lateralized concepts carry a side")
        concepts[sctid] = MuscleConcept(
            sctid=sctid,
            name=row["name_as_found"],
            canonical_muscle=row["canonical_muscle"],
            kind=kind,
            side=side,
            source=row["source"],
            confidence=parse_choice(path, row_number, "confidence", row["confidence"], _CONFIDENCE),
            verified=parse_choice(path, row_number, "verified", row["verified"], _VERIFIED) == "yes",
        )
    return concepts


def load_laterality_qualifiers(path: Path = LATERALITY_FILE) -> dict[str, Side]:
    """Read and validate the laterality qualifier table."""
    qualifiers: dict[str, Side] = {}
    for row_number, row in read_table(path, ("sctid", "name_as_found", "side", "source", "confidence")):
        if row["sctid"] in qualifiers:
            raise MappingError(path.name, row_number, "sctid", f"{row['sctid']} appears twice")
        qualifiers[row["sctid"]] = Side(parse_choice(path, row_number, "side", row["side"], _SIDES))
    return qualifiers


@cache
def muscle_catalog() -> MuscleCatalog:
    """The catalog shipped in ``mappings/``, loaded once per process."""
    return MuscleCatalog(concepts=load_muscle_concepts(), laterality=load_laterality_qualifiers())
