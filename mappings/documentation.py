"""The documentation elements of a dry-needling service, where FHIR carries each, and who requires it.

``documentation_elements.csv`` has one row per element (DOC-01..DOC-14 of the catalog, where FHIR can
show the element): its label, where it lives in FHIR, whether an order can carry it or only a
performed Procedure, the requirement every payer shares (``required``, ``professionally-required`` or
``good-practice``) and the rule that already reports it when it is missing (``covered_by``).
``documentation_requirements.csv`` has one row per payer-specific requirement: an element is
``required`` for a payer class (``class:medicare-ffs``) or a policy pack (``pack:bcbsa-mp-740``) during
the row's effective period.

Catalog rows that are not elements FHIR can show are left out: DOC-03 (the muscle count matches the
code: DN-CODE-001), DOC-06 (nonspecific, not surgery- or pregnancy-related low back pain: the Medicare
diagnosis rules), DOC-07 (failed conservative care: no FHIR element states it), DOC-15 (ABN on file:
no standard FHIR form; the liability-modifier rules check GA/GX/GY), DOC-16 and DOC-17 (billing
advice, not documentation).

Informed consent (DOC-14) is ``professionally-required``: the ACA billing article (Hamm, source
``DOC-14-ACA``) says consent is mandatory, a professional body's requirement rather than a payer's
criterion (the Washington rule, ``DOC-14``, is cited after it). DN-DOC-010 decides how each level
surfaces.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from pathlib import Path

from needlecheck.mappings.errors import MappingError
from needlecheck.mappings.local_policy import merged_by_period, with_local_rows
from needlecheck.mappings.provenance import parse_confidence, parse_source_ids
from needlecheck.mappings.sources import PolicySource
from needlecheck.mappings.tables import DATA_DIR, EffectivePeriod, parse_choice, parse_period, read_table

ELEMENTS_FILE = DATA_DIR / "documentation_elements.csv"
REQUIREMENTS_FILE = DATA_DIR / "documentation_requirements.csv"

# The values of plugin.payer.PayerClass; a test keeps the two lists equal.
PAYER_CLASSES = frozenset({
    "medicare-ffs", "medicare-advantage", "medicaid", "tricare", "commercial", "workers-comp", "other", "unknown",
})
_ID = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
_RULE_ID = re.compile(r"^DN-[A-Z]+-\d{3}$")
_CATALOG_ID = re.compile(r"^DOC-\d{2}$")


class Requirement(StrEnum):
    """How much an element matters: a payer or auditor criterion, a requirement a professional source states,
    or advice from professional sources."""

    REQUIRED = "required"
    PROFESSIONALLY_REQUIRED = "professionally-required"  # a professional body's requirement, not a payer's
    GOOD_PRACTICE = "good-practice"


class AppliesTo(StrEnum):
    """Which records can carry an element: an order already can, or only a performed Procedure."""

    ORDER_AND_PROCEDURE = "order-and-procedure"
    PROCEDURE = "procedure"


@dataclass(frozen=True)
class DocumentationElement:
    """One row of ``documentation_elements.csv``."""

    element_id: str
    catalog_id: str
    label: str
    fhir_location: str
    applies_to: AppliesTo
    requirement: Requirement
    covered_by: tuple[str, ...]
    period: EffectivePeriod
    source_ids: tuple[str, ...]
    confidence: str

    def applies_to_line(self, is_procedure_record: bool) -> bool:
        """Whether an order (False) or a performed Procedure (True) is expected to carry this element."""
        return is_procedure_record or self.applies_to is AppliesTo.ORDER_AND_PROCEDURE


@dataclass(frozen=True)
class PayerRequirement:
    """One row of ``documentation_requirements.csv``: ``payer`` is ``class:<payer class>`` or ``pack:<pack>``."""

    element_id: str
    payer: str
    requirement: Requirement
    period: EffectivePeriod
    statement: str
    source_ids: tuple[str, ...]
    confidence: str

    def applies_to_payer(self, payer_class: str, pack: str | None) -> bool:
        """Whether the row is about this payer class or policy pack."""
        return self.payer == f"class:{payer_class}" or (pack is not None and self.payer == f"pack:{pack}")


def load_documentation_elements(path: Path = ELEMENTS_FILE,
                                sources: dict[str, PolicySource] | None = None) -> dict[str, DocumentationElement]:
    """Read and validate the element table, keeping its row order (the order findings list elements in)."""
    required = ("element", "doc_rule", "label", "fhir_location", "applies_to", "requirement", "source_ids",
                "confidence")
    elements: dict[str, DocumentationElement] = {}
    for row_number, row in read_table(path, required):
        element_id = row["element"]
        if not _ID.match(element_id):
            raise MappingError(path.name, row_number, "element", f"'{element_id}' is not a kebab-case id")
        if element_id in elements:
            raise MappingError(path.name, row_number, "element", f"{element_id} appears twice")
        if not _CATALOG_ID.match(row["doc_rule"]):
            raise MappingError(path.name, row_number, "doc_rule", f"'{row['doc_rule']}' is not a DOC-nn catalog id")
        covered_by = tuple(part.strip() for part in row.get("covered_by", "").split(";") if part.strip())
        for rule_id in covered_by:
            if not _RULE_ID.match(rule_id):
                raise MappingError(path.name, row_number, "covered_by", f"'{rule_id}' is not a rule id")
        elements[element_id] = DocumentationElement(
            element_id=element_id,
            catalog_id=row["doc_rule"],
            label=row["label"],
            fhir_location=row["fhir_location"],
            applies_to=AppliesTo(parse_choice(path, row_number, "applies_to", row["applies_to"],
                                              frozenset(AppliesTo))),
            requirement=Requirement(parse_choice(path, row_number, "requirement", row["requirement"],
                                                 frozenset(Requirement))),
            covered_by=covered_by,
            period=parse_period(path, row_number, row),
            source_ids=parse_source_ids(path, row_number, "source_ids", row["source_ids"], sources),
            confidence=parse_confidence(path, row_number, row["confidence"]),
        )
    return elements


def _parse_payer(path: Path, row_number: int, value: str) -> str:
    kind, _, name = value.partition(":")
    if kind == "class" and name in PAYER_CLASSES:
        return value
    if kind == "pack" and _ID.match(name):
        return value
    raise MappingError(path.name, row_number, "payer",
                       f"'{value}' is neither class:<payer class> ({', '.join(sorted(PAYER_CLASSES))}) nor pack:<id>")


def load_documentation_requirements(path: Path = REQUIREMENTS_FILE, elements: frozenset[str] | None = None,
                                    sources: dict[str, PolicySource] | None = None) -> tuple[PayerRequirement, ...]:
    """Read and validate the payer-specific requirements; each must name an element of ``elements``."""
    known = frozenset(documentation_elements()) if elements is None else elements
    required = ("element", "payer", "requirement", "statement", "source_ids", "confidence")
    rows: list[PayerRequirement] = []
    for row_number, row in read_table(path, required):
        if row["element"] not in known:
            raise MappingError(path.name, row_number, "element", f"'{row['element']}' is not a documentation element")
        rows.append(PayerRequirement(
            element_id=row["element"],
            payer=_parse_payer(path, row_number, row["payer"]),
            requirement=Requirement(parse_choice(path, row_number, "requirement", row["requirement"],
                                                 frozenset(Requirement))),
            period=parse_period(path, row_number, row),
            statement=row["statement"],
            source_ids=parse_source_ids(path, row_number, "source_ids", row["source_ids"], sources),
            confidence=parse_confidence(path, row_number, row["confidence"]),
        ))
    return tuple(rows)


@cache
def documentation_elements() -> dict[str, DocumentationElement]:
    """The element table shipped in ``mappings/``, loaded once per process."""
    return load_documentation_elements()


@cache
def documentation_requirements() -> tuple[PayerRequirement, ...]:
    """The payer-specific requirements shipped in ``mappings/`` with the local rows of ``policy_dir``, loaded once."""
    return with_local_rows(load_documentation_requirements(), "documentation_requirements.csv",
                           load_documentation_requirements, merged_by_period,
                           lambda row: (row.element_id, row.payer))


@dataclass(frozen=True)
class ElementRequirement:
    """How much one element matters for one payer on one day, the sources that say so, and why (payer rows)."""

    element: DocumentationElement
    requirement: Requirement
    source_ids: tuple[str, ...]
    statement: str = ""


def requirement_for(element: DocumentationElement, payer_class: str, pack: str | None,
                    day: dt.date) -> ElementRequirement:
    """The element's requirement for this payer on ``day``: a payer row in force wins over the shared one."""
    for row in documentation_requirements():
        if row.element_id == element.element_id and row.applies_to_payer(payer_class, pack) and row.period.covers(day):
            return ElementRequirement(element, row.requirement, row.source_ids, row.statement)
    return ElementRequirement(element, element.requirement, element.source_ids)
