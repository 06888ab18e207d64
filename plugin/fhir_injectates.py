"""What a Procedure shows about injected drugs: proven injections, and drugs whose route is not known.

``Procedure.usedCode`` and ``usedReference`` list whatever was used: needles, a skin prep, an
electrical-stimulation device, a drug. Only an injected drug makes a needle procedure a trigger-point
injection (20552/20553), so the evidence is sorted in three:

- **injected** (proof): a MedicationAdministration recorded for the Procedure (``usedReference`` to it,
  or its ``partOf`` naming the Procedure) whose route is not a non-injection route; or a drug product
  whose name, dose form or route says injection ("solution for injection", "injectable", "prefilled
  syringe", "intramuscular" ...).
- **route unknown**: a drug with nothing about how it was given: a code of a drug terminology (RxNorm,
  NDC, ATC, UNII) or a SNOMED CT concept whose display carries the substance or product tag, or a
  reference to a Medication or Substance. Lidocaine is injected for a trigger-point injection but also
  applied to the skin, so the ingredient alone proves nothing.
- **not a drug given**: devices (needles, stimulators), unknown local codes, text without a drug
  terminology, and anything whose name, form or route says it stayed on the surface (topical, cutaneous,
  skin prep, antiseptic, swab ...): chlorhexidine skin prep is not an injectate. Where words say both,
  the surface wins: the other reading would recommend a false injection code.

The words are English plain words, matched as whole words in texts and displays; no code list is
involved, so no code is asserted here that a terminology does not define.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from needlecheck.plugin.fhir_record import PatientRecord, codings_of
from needlecheck.plugin.fhir_view import FhirView, is_resource
from needlecheck.plugin.frozen import built_at_once

# Code systems whose codes are always drugs or substances; SNOMED CT mixes substances with devices.
DRUG_SYSTEMS = frozenset({
    "http://www.nlm.nih.gov/research/umls/rxnorm",
    "http://hl7.org/fhir/sid/ndc",
    "http://fdasis.nlm.nih.gov",
    "http://www.whocc.no/atc",
})
SNOMED_SYSTEM = "http://snomed.info/sct"
# SNOMED CT semantic tags of drugs and substances, as they end a fully specified name.
DRUG_TAGS = ("(substance)", "(product)", "(medicinal product)", "(medicinal product form)", "(clinical drug)")
_INJECTION = re.compile(r"\b(inject\w*|syringes?|auto-?injectors?|intramuscular|intradermal|subcutaneous|"
                        r"intralesional|infiltrat\w*|intravenous)\b")
_SURFACE = re.compile(r"\b(topical\w*|cutaneous|transdermal|skin prep\w*|antiseptic|swabs?|wipes?|oral|nasal|"
                      r"ophthalmic|otic|inhal\w*|creams?|ointments?|gels?|patch(es)?|sprays?|lotions?|rectal|vaginal|"
                      r"sublingual|buccal)\b")
_NOT_GIVEN = ("not-done", "entered-in-error")


@built_at_once
@dataclass(frozen=True)
class UsedDrugs:
    """Names of the drugs a Procedure shows as injected, and of those whose route it does not show."""

    injected: tuple[str, ...] = ()
    route_unknown: tuple[str, ...] = ()


def _words(concepts: Iterable[FhirView | None]) -> str:
    texts = [c.text for c in concepts if c is not None and c.text]
    texts += [coding.display for c in concepts for coding in codings_of(c) if coding.display]
    return " ".join(texts).lower()


def _label(concept: FhirView | None, fallback: str) -> str:
    if concept is None:
        return fallback
    return concept.text or next((c.display for c in codings_of(concept) if c.display), None) or fallback


def _is_drug_code(concept: FhirView) -> bool:
    for coding in codings_of(concept):
        if coding.system in DRUG_SYSTEMS and coding.code:
            return True
        if coding.system == SNOMED_SYSTEM and (coding.display or "").lower().endswith(DRUG_TAGS):
            return True
    return False


def _sort(name: str, words: str, is_drug: bool, found: dict[str, list[str]]) -> None:
    """File ``name`` under injected, route unknown, or nothing, by what ``words`` say."""
    if _SURFACE.search(words):
        return
    if _INJECTION.search(words):
        found["injected"].append(name)
    elif is_drug:
        found["route_unknown"].append(name)


def _administration_words(administration: FhirView, record: PatientRecord) -> tuple[str, str]:
    """The name of the administered drug, and every word about its form and route."""
    concepts: list[FhirView | None] = [administration.medicationCodeableConcept]
    if administration.dosage is not None:
        concepts += [administration.dosage.route, administration.dosage.method, administration.dosage.site]
    reference = administration.medicationReference
    medication = record.resolve(reference, administration) if reference is not None else None
    if is_resource(medication, "Medication"):
        concepts += [medication.code, medication.form]
    name = _label(administration.medicationCodeableConcept or (medication.code if is_resource(medication, "Medication")
                                                               else None),
                  (reference.display if reference else None) or "an administered drug")
    return name, _words(concepts)


def _administrations_for(procedure: FhirView, record: PatientRecord) -> list[FhirView]:
    """MedicationAdministrations recorded for ``procedure``: by its usedReference, or naming it in partOf."""
    found: list[Any] = [record.resolve(reference, procedure) for reference in procedure.usedReference or []]
    if procedure.id:
        names = {f"#{procedure.id}", f"Procedure/{procedure.id}"}
        candidates = [*(procedure.contained or []), *(getattr(record.enclosing, "contained", None) or []),
                      *record.all_of("MedicationAdministration")]
        found += [c for c in candidates if is_resource(c, "MedicationAdministration")
                  and any((p.reference or "").endswith(tuple(names)) for p in c.partOf or [])]
    unique = {id(a.json): a for a in found if is_resource(a, "MedicationAdministration") and a.status not in _NOT_GIVEN}
    return list(unique.values())


def used_drugs(procedure: FhirView, record: PatientRecord) -> UsedDrugs:
    """The drugs ``procedure`` shows as injected, and those given by a route it does not show."""
    found: dict[str, list[str]] = {"injected": [], "route_unknown": []}
    for concept in procedure.usedCode or []:
        _sort(_label(concept, "a drug"), _words([concept]), _is_drug_code(concept), found)
    for reference in procedure.usedReference or []:
        target = record.resolve(reference, procedure)
        kind = target.get_resource_type() if target else (reference.type or (reference.reference or "").split("/")[0])
        if kind == "Medication":
            code = target.code if is_resource(target, "Medication") else None
            form = target.form if is_resource(target, "Medication") else None
            name = reference.display or _label(code, reference.reference or "a medication")
            _sort(name, " ".join(w for w in (_words([code, form]), (reference.display or "").lower()) if w), True,
                  found)
        elif kind == "Substance":
            code = target.code if is_resource(target, "Substance") else None
            name = reference.display or _label(code, reference.reference or "a substance")
            _sort(name, " ".join(w for w in (_words([code]), (reference.display or "").lower()) if w), True, found)
        elif kind == "MedicationAdministration" and target is None:
            # An administration recorded for the procedure that we cannot read: a drug, route unknown.
            found["route_unknown"].append(reference.display or reference.reference or "an administered drug")
    for administration in _administrations_for(procedure, record):
        name, words = _administration_words(administration, record)
        _sort(name, words, True, found)
    injected = tuple(dict.fromkeys(found["injected"]))
    unknown = tuple(name for name in dict.fromkeys(found["route_unknown"]) if name not in injected)
    return UsedDrugs(injected, unknown)
