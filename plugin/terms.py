"""Small value types shared by the domain model: codings and body sites as the engine sees them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from needlecheck.mappings.code_systems import canonical_system
from needlecheck.plugin.frozen import built_at_once

SNOMED_SYSTEM = "http://snomed.info/sct"
ICD10CM_SYSTEM = "http://hl7.org/fhir/sid/icd-10-cm"


class Coding(NamedTuple):
    """A code in a code system, with the display the sender gave it.

    A named tuple, not a frozen dataclass: a hook call makes dozens and a scan millions, and a tuple is
    built three times faster.
    """

    system: str | None
    code: str | None
    display: str | None = None

    def is_in(self, system: str) -> bool:
        """Whether this coding is from ``system`` and carries a code.

        ``system`` is a FHIR URI; the OID spelling of the same code system (``urn:oid:2.16.840.1.113883.6.12``
        for CPT, see ``mappings/code_systems.csv``) is the same system.
        """
        return bool(self.code) and canonical_system(self.system) == system


@built_at_once
@dataclass(frozen=True)
class BodySite:
    """A body site as the record gives it, before it is reduced to a muscle.

    ``laterality`` holds SNOMED qualifier codes that travel beside the site (the mCODE laterality
    extension or a BodyStructure's locationQualifier); a side inside the code itself is found when
    the site is reduced.
    """

    codings: tuple[Coding, ...] = ()
    text: str | None = None
    laterality: tuple[str, ...] = ()

    @property
    def snomed_codes(self) -> tuple[str, ...]:
        """The SNOMED CT codes (or expressions) of the site."""
        return tuple(c.code for c in self.codings if c.code and canonical_system(c.system) == SNOMED_SYSTEM)

    @property
    def label(self) -> str:
        """How a person would name this site in a message: text, else display, else the code."""
        if self.text:
            return self.text
        for coding in self.codings:
            if coding.display:
                return coding.display
        for coding in self.codings:
            if coding.code:
                return f"{coding.code} ({coding.system})" if coding.system else coding.code
        return "unnamed body site"
