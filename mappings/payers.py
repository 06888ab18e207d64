"""Who pays: Source of Payment Typology codes → payer class, and the payer directory → policy pack.

``payer_classes.csv`` maps SOPT code prefixes (system ``urn:oid:2.16.840.1.113883.3.221.5``) to a payer
class; the longest prefix wins, so ``311`` (TRICARE) beats ``3`` (other government).
``claim_filing_indicators.csv`` maps X12 claim filing indicator codes (element 1032, 837 SBR09) to a
payer class; only codes that name the kind of payer are listed (12-15 and HM say how a plan is built, not
whose it is, so the payor's name decides those).
``payer_directory.csv`` matches a Coverage's payor identifiers or names (payor and plan names) to a
policy pack; rows are tried in file order and the first match wins, so Medicare rows (MACs, Medicare
Advantage plan names) sit above the carriers' commercial packs. A row without a pack only tells the
payer class: a payer whose own policy no source covers gets the sourced generic advice.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path

from needlecheck.mappings.errors import MappingError
from needlecheck.mappings.local_policy import merged_in_front, with_local_rows
from needlecheck.mappings.provenance import parse_confidence, parse_source_ids
from needlecheck.mappings.tables import DATA_DIR, parse_choice, parse_https_url, read_table

PAYER_CLASSES_FILE = DATA_DIR / "payer_classes.csv"
PAYER_DIRECTORY_FILE = DATA_DIR / "payer_directory.csv"
CLAIM_FILING_INDICATORS_FILE = DATA_DIR / "claim_filing_indicators.csv"

# The OID form is what US Core examples send; https://nahdo.org/sopt is the URI HL7 THO endorses for it.
SOPT_SYSTEMS = frozenset({"urn:oid:2.16.840.1.113883.3.221.5", "https://nahdo.org/sopt"})
# X12 element 1032 by the naming scheme HL7's US IGs use for X12 code lists (source X12-CODESYSTEM).
CLAIM_FILING_INDICATOR_SYSTEMS = frozenset({"https://codesystem.x12.org/005010/1032"})

PAYER_CLASSES = frozenset({
    "medicare-ffs", "medicare-advantage", "medicaid", "tricare", "commercial", "workers-comp", "other", "unknown",
})
_MATCH_KINDS = frozenset({"name", "identifier"})


@dataclass(frozen=True)
class PayerClassRow:
    """One row of ``payer_classes.csv``: every SOPT code starting with ``code_prefix`` is ``payer_class``."""

    code_prefix: str
    payer_class: str
    meaning: str
    source_title: str
    source_url: str
    confidence: str


@dataclass(frozen=True)
class DirectoryEntry:
    """One row of ``payer_directory.csv``; ``pack`` is empty for a row that only tells the payer class.

    A ``name`` row matches when ``pattern`` (a case-insensitive regular expression, so a plain word is a
    substring match) is found in a payor name or a plan name (Coverage.class); an ``identifier`` row when
    a payor identifier has ``identifier_system`` and exactly the value ``pattern``. ``applies_when``
    lists the payer classes (from the Coverage.type code) the row may apply to; empty means any, so an
    Aetna Medicare Advantage plan can be kept out of the Aetna commercial pack.
    """

    row_number: int
    pack: str
    payer_class: str
    match: str
    identifier_system: str
    identifier_value: str
    name_pattern: re.Pattern[str] | None
    applies_when: frozenset[str]
    display_name: str
    source_id: str
    source_title: str
    source_url: str
    confidence: str

    def matches(self, identifiers: tuple[tuple[str | None, str], ...], names: tuple[str, ...]) -> bool:
        """Whether this row names the payor with these identifiers and names."""
        if self.name_pattern is None:
            return any(system == self.identifier_system and value == self.identifier_value
                       for system, value in identifiers)
        return any(self.name_pattern.search(name) for name in names)

    def applies_to(self, payer_class: str) -> bool:
        """Whether the row may decide the pack of a coverage whose SOPT code says ``payer_class``."""
        return not self.applies_when or payer_class in self.applies_when


def load_payer_classes(path: Path = PAYER_CLASSES_FILE) -> dict[str, PayerClassRow]:
    """Read and validate the SOPT prefix table, keyed by prefix."""
    rows: dict[str, PayerClassRow] = {}
    required = ("code_prefix", "payer_class", "meaning", "source_title", "source_url", "confidence")
    for row_number, row in read_table(path, required):
        prefix = row["code_prefix"]
        if not prefix.isdigit():
            raise MappingError(path.name, row_number, "code_prefix", f"'{prefix}' is not a SOPT code (digits)")
        if prefix in rows:
            raise MappingError(path.name, row_number, "code_prefix", f"{prefix} appears twice")
        rows[prefix] = PayerClassRow(
            code_prefix=prefix,
            payer_class=parse_choice(path, row_number, "payer_class", row["payer_class"], PAYER_CLASSES),
            meaning=row["meaning"],
            source_title=row["source_title"],
            source_url=parse_https_url(path, row_number, "source_url", row["source_url"]),
            confidence=row["confidence"],
        )
    return rows


@dataclass(frozen=True)
class ClaimFilingIndicator:
    """One row of ``claim_filing_indicators.csv``: X12 claim filing indicator ``code`` is ``payer_class``."""

    code: str
    payer_class: str
    meaning: str
    source_ids: tuple[str, ...]
    confidence: str


def load_claim_filing_indicators(path: Path = CLAIM_FILING_INDICATORS_FILE) -> dict[str, ClaimFilingIndicator]:
    """Read and validate the claim filing indicator table, keyed by code (matched exactly)."""
    rows: dict[str, ClaimFilingIndicator] = {}
    for row_number, row in read_table(path, ("code", "payer_class", "meaning", "source_id", "confidence")):
        code = row["code"]
        if len(code) != 2 or not code.isalnum() or code != code.upper():
            raise MappingError(path.name, row_number, "code", f"'{code}' is not an X12 claim filing indicator")
        if code in rows:
            raise MappingError(path.name, row_number, "code", f"{code} appears twice")
        rows[code] = ClaimFilingIndicator(
            code=code,
            payer_class=parse_choice(path, row_number, "payer_class", row["payer_class"], PAYER_CLASSES),
            meaning=row["meaning"],
            source_ids=parse_source_ids(path, row_number, "source_id", row["source_id"]),
            confidence=parse_confidence(path, row_number, row["confidence"]),
        )
    return rows


def _classes(path: Path, row_number: int, value: str) -> frozenset[str]:
    classes = frozenset(part.strip() for part in value.split("|") if part.strip())
    for payer_class in classes:
        parse_choice(path, row_number, "applies_when", payer_class, PAYER_CLASSES)
    return classes


def _name_pattern(path: Path, row_number: int, value: str) -> re.Pattern[str]:
    try:
        return re.compile(value, re.IGNORECASE)
    except re.error as error:
        raise MappingError(path.name, row_number, "pattern", f"not a valid regular expression: {error}") from error


def load_payer_directory(path: Path = PAYER_DIRECTORY_FILE, cataloged: bool = True) -> tuple[DirectoryEntry, ...]:
    """Read and validate the payer directory, in file order (the first matching row wins).

    ``cataloged``: each ``source_id`` must be an entry of ``mappings/policy_sources/`` (the shipped table); a
    site's local table (``policy_dir``) cites its own documents by title and https URL, as its policy rows do.
    """
    entries: list[DirectoryEntry] = []
    required = ("payer_class", "match", "pattern", "display_name", "source_id", "source_title",
                "source_url", "confidence")
    for row_number, row in read_table(path, required):
        match = parse_choice(path, row_number, "match", row["match"], _MATCH_KINDS)
        system = row.get("identifier_system", "")
        if match == "identifier" and not system:
            raise MappingError(path.name, row_number, "identifier_system", "an identifier row needs a system")
        if "pack" not in row:
            raise MappingError(path.name, 1, "pack", "column is missing from the header")
        entries.append(DirectoryEntry(
            row_number=row_number,
            pack=row["pack"],
            payer_class=parse_choice(path, row_number, "payer_class", row["payer_class"], PAYER_CLASSES),
            match=match,
            identifier_system=system,
            identifier_value=row["pattern"] if match == "identifier" else "",
            name_pattern=_name_pattern(path, row_number, row["pattern"]) if match == "name" else None,
            applies_when=_classes(path, row_number, row.get("applies_when", "")),
            display_name=row["display_name"],
            source_id=parse_source_ids(path, row_number, "source_id", row["source_id"])[0] if cataloged
            else row["source_id"],
            source_title=row["source_title"],
            source_url=parse_https_url(path, row_number, "source_url", row["source_url"]),
            confidence=row["confidence"],
        ))
    return tuple(entries)


@cache
def payer_classes() -> dict[str, PayerClassRow]:
    """The SOPT prefix table shipped in ``mappings/``, loaded once per process."""
    return load_payer_classes()


@cache
def claim_filing_indicators() -> dict[str, ClaimFilingIndicator]:
    """The claim filing indicator table shipped in ``mappings/``, loaded once per process."""
    return load_claim_filing_indicators()


@cache
def payer_directory() -> tuple[DirectoryEntry, ...]:
    """The payer directory shipped in ``mappings/`` with the local rows of ``policy_dir``, loaded once per process."""
    return with_local_rows(load_payer_directory(), "payer_directory.csv",
                           lambda path: load_payer_directory(path, cataloged=False), merged_in_front,
                           lambda row: (row.pack, row.match, row.identifier_system,
                                        row.identifier_value or (row.name_pattern.pattern if row.name_pattern else "")))


@lru_cache(maxsize=4096)
def directory_entry_for(identifiers: tuple[tuple[str | None, str], ...], names: tuple[str, ...],
                        payer_class: str) -> DirectoryEntry | None:
    """The first directory row that names the payor with these identifiers and names and may apply to a
    coverage of ``payer_class``. Remembered per payor: a practice bills few payers, and every hook call asks."""
    for entry in payer_directory():
        if entry.applies_to(payer_class) and entry.matches(identifiers, names):
            return entry
    return None


def payer_class_of_sopt(code: str, table: dict[str, PayerClassRow] | None = None) -> PayerClassRow | None:
    """The row of the longest prefix of ``code`` in the SOPT table, or None when no prefix matches."""
    rows = payer_classes() if table is None else table
    for length in range(len(code), 0, -1):
        row = rows.get(code[:length])
        if row is not None:
            return row
    return None
