"""Turning FHIR R4 resources into the billing context the rules read.

This is the only module of the engine that knows FHIR. It never fetches anything: the HTTP layer
hands it the resources it has (from the request, prefetch or the EHR's FHIR server) as a
``PatientRecord``, and it resolves references only within that record.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from fhir.resources.R4B.bodystructure import BodyStructure
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.claim import Claim, ClaimDiagnosis, ClaimItem
from fhir.resources.R4B.codeableconcept import CodeableConcept
from fhir.resources.R4B.condition import Condition
from fhir.resources.R4B.procedure import Procedure
from fhir.resources.R4B.reference import Reference
from fhir.resources.R4B.servicerequest import ServiceRequest

from needlecheck.mappings.code_systems import canonical_system
from needlecheck.mappings.cpt import CPT_SYSTEM
from needlecheck.plugin.context import BillingContext, ConditionFacts, PriorService, ServiceLine
from needlecheck.plugin.fhir_documentation import documented_elements
from needlecheck.plugin.fhir_parties import (
    claim_item_performers,
    coverage_facts,
    encounter_state,
    first_state,
    order_performers,
    procedure_performers,
)
from needlecheck.plugin.fhir_record import PatientRecord, as_date, codings_of
from needlecheck.plugin.terms import BodySite, Coding

LATERALITY_EXTENSION = "http://hl7.org/fhir/us/mcode/StructureDefinition/mcode-laterality-qualifier"
TARGET_BODY_STRUCTURE_EXTENSION = "http://hl7.org/fhir/StructureDefinition/procedure-targetBodyStructure"
BODY_SITE_REFERENCE_EXTENSION = "http://hl7.org/fhir/StructureDefinition/bodySite"
# Code systems whose codes are always drugs or substances; SNOMED CT mixes substances with devices.
SUBSTANCE_SYSTEMS = frozenset({
    "http://www.nlm.nih.gov/research/umls/rxnorm",
    "http://hl7.org/fhir/sid/ndc",
    "http://fdasis.nlm.nih.gov",
    "http://www.whocc.no/atc",
})
SUBSTANCE_RESOURCES = frozenset({"Medication", "Substance", "MedicationAdministration"})


def cpt_code_of(concept: CodeableConcept | None) -> str | None:
    """The CPT code of a concept; codes in other systems never count, whatever their digits."""
    return next((c.code for c in codings_of(concept) if c.is_in(CPT_SYSTEM)), None)


def _laterality_codes(element: Any) -> tuple[str, ...]:
    codes: list[str] = []
    for extension in getattr(element, "extension", None) or []:
        if extension.url == LATERALITY_EXTENSION:
            codes.extend(c.code for c in codings_of(extension.valueCodeableConcept) if c.code)
    return tuple(codes)


def _body_structure_site(structure: BodyStructure) -> BodySite:
    qualifiers = tuple(c.code for q in structure.locationQualifier or [] for c in codings_of(q) if c.code)
    text = (structure.location.text if structure.location else None) or structure.description
    return BodySite(codings_of(structure.location), text, qualifiers)


def body_sites_of(resource: ServiceRequest | Procedure, record: PatientRecord) -> tuple[BodySite, ...]:
    """Every body site of an order or Procedure, whichever of the four FHIR forms carries it."""
    sites: list[BodySite] = []
    for concept in resource.bodySite or []:
        laterality = _laterality_codes(concept)
        codings = codings_of(concept)
        text = concept.text
        for extension in concept.extension or []:
            if extension.url != BODY_SITE_REFERENCE_EXTENSION:
                continue
            structure = record.resolve(extension.valueReference, resource)
            if isinstance(structure, BodyStructure):
                referenced = _body_structure_site(structure)
                laterality += referenced.laterality
                codings = codings or referenced.codings
                text = text or referenced.text
        sites.append(BodySite(codings, text, laterality))
    for extension in resource.extension or []:
        if extension.url != TARGET_BODY_STRUCTURE_EXTENSION:
            continue
        structure = record.resolve(extension.valueReference, resource)
        if isinstance(structure, BodyStructure):
            sites.append(_body_structure_site(structure))
    return tuple(sites)


def _reasons(codes: Iterable[CodeableConcept], references: Iterable[Reference], record: PatientRecord,
             container: Any) -> tuple[Coding, ...]:
    reasons = [coding for concept in codes for coding in codings_of(concept) or (Coding(None, None, concept.text),)]
    for reference in references:
        condition = record.resolve(reference, container)
        if isinstance(condition, Condition) and condition.code:
            reasons.extend(codings_of(condition.code) or (Coding(None, None, condition.code.text),))
        else:
            # An unresolved reference still states that there is a reason; keep it as such.
            reasons.append(Coding(None, None, reference.display or reference.reference))
    return tuple(reasons)


def injected_substances(procedure: Procedure, record: PatientRecord) -> tuple[str, ...]:
    """Names of drugs or substances the Procedure records as used (devices such as needles are not)."""
    names: list[str] = []
    for concept in procedure.usedCode or []:
        codings = codings_of(concept)
        label = concept.text or next((c.display for c in codings if c.display), None)
        is_substance = any(c.system in SUBSTANCE_SYSTEMS for c in codings)
        # A SNOMED CT item may be a device; "needle" in its name marks the needles of dry needling.
        if not is_substance and codings and "needle" not in (label or "").lower():
            is_substance = True
        if is_substance:
            names.append(label or codings[0].code or "a substance")
    for reference in procedure.usedReference or []:
        target = record.resolve(reference, procedure)
        kind = target.get_resource_type() if target else (reference.reference or "").split("/")[0]
        if kind in SUBSTANCE_RESOURCES or reference.type in SUBSTANCE_RESOURCES:
            code = getattr(target, "code", None)
            label = reference.display or (code.text if code else None)
            label = label or next((c.display for c in codings_of(code) if c.display), None)
            names.append(label or reference.reference or "a substance")
    return tuple(names)


def _order_date(order: ServiceRequest) -> dt.date | None:
    if order.occurrenceDateTime is not None:
        return as_date(order.occurrenceDateTime)
    if order.occurrencePeriod is not None:
        return as_date(order.occurrencePeriod.start)
    return None


def performed_date(procedure: Procedure) -> dt.date | None:
    """The date a Procedure was performed, from performedDateTime or the start of performedPeriod."""
    if procedure.performedDateTime is not None:
        return as_date(procedure.performedDateTime)
    if procedure.performedPeriod is not None:
        return as_date(procedure.performedPeriod.start)
    return None


def described_as(concepts: Iterable[CodeableConcept | None]) -> tuple[str, ...]:
    """The words the record uses for a service: the texts and code displays of its codes."""
    words = [c.text for c in concepts if c is not None and c.text]
    words += [coding.display for c in concepts for coding in codings_of(c) if coding.display]
    return tuple(dict.fromkeys(words))


def order_lines(draft_orders: Bundle, record: PatientRecord,
                signer: Reference | None = None) -> tuple[ServiceLine, ...]:
    """One line per draft ServiceRequest (or Procedure) with a CPT code; other orders are not ours.

    ``signer`` is the clinician signing (``context.userId``), taken as the performer of an order that
    names none.
    """
    lines: list[ServiceLine] = []
    for index, entry in enumerate(draft_orders.entry or [], start=1):
        order = entry.resource
        if not isinstance(order, ServiceRequest | Procedure):
            continue
        code = cpt_code_of(order.code)
        if code is None:
            continue
        kind = order.get_resource_type()
        reference = f"{kind}/{order.id}" if order.id else f"{kind} in draftOrders entry {index}"
        performers = order_performers(order, record, signer)
        if isinstance(order, ServiceRequest):
            quantity = order.quantityQuantity.value if order.quantityQuantity else None
            units = Decimal(str(quantity)) if quantity is not None else Decimal(1)
            date_of_service = _order_date(order)
            substances: tuple[str, ...] = ()
            places = list(order.locationReference or [])
        else:
            units, date_of_service = Decimal(1), performed_date(order)
            substances = injected_substances(order, record)
            places = [order.location]
        lines.append(ServiceLine(
            key=reference,
            label=f"order {reference}",
            resource_ref=reference,
            code=code,
            date_of_service=date_of_service,
            units=units,
            body_sites=body_sites_of(order, record),
            indications=_reasons(order.reasonCode or [], order.reasonReference or [], record, order),
            injected_substances=substances,
            described_as=described_as([order.code]),
            performers=tuple(performers),
            service_state=first_state([*places, *(Reference(reference=p.reference) for p in performers)], record,
                                      order) or encounter_state(record),
            documented=documented_elements(order, record),
            is_procedure_record=isinstance(order, Procedure),
        ))
    return tuple(lines)


def claim_procedure_references(claim: Claim) -> list[Reference]:
    """References to the Procedures a claim bills, in the order of ``Claim.procedure``."""
    return [p.procedureReference for p in claim.procedure or [] if p.procedureReference is not None]


def _item_procedures(claim: Claim, item: ClaimItem, procedures: dict[int, Procedure], code: str) -> list[Procedure]:
    if item.procedureSequence:
        return [procedures[seq] for seq in item.procedureSequence if seq in procedures]
    # A line that points at no procedure bills the claim's procedures with the same code.
    same_code = [p for p in procedures.values() if cpt_code_of(p.code) == code]
    return same_code or (list(procedures.values()) if len(procedures) == 1 else [])


def _item_diagnosis_entries(claim: Claim, item: ClaimItem) -> list[ClaimDiagnosis]:
    wanted = set(item.diagnosisSequence or [])
    return [d for d in claim.diagnosis or [] if not wanted or d.sequence in wanted]


def _item_diagnoses(claim: Claim, item: ClaimItem, record: PatientRecord) -> tuple[Coding, ...]:
    chosen = _item_diagnosis_entries(claim, item)
    concepts = [d.diagnosisCodeableConcept for d in chosen if d.diagnosisCodeableConcept is not None]
    references = [d.diagnosisReference for d in chosen if d.diagnosisReference is not None]
    return _reasons(concepts, references, record, claim)


def _item_date(claim: Claim, item: ClaimItem, procedures: list[Procedure]) -> dt.date | None:
    if item.servicedDate is not None:
        return as_date(item.servicedDate)
    if item.servicedPeriod is not None:
        return as_date(item.servicedPeriod.start)
    dates = [performed_date(p) for p in procedures]
    return next((d for d in dates if d), None) or (
        as_date(claim.billablePeriod.start) if claim.billablePeriod else None)


def claim_lines(claim: Claim, record: PatientRecord) -> tuple[ServiceLine, ...]:
    """One line per claim item with a CPT code, with the muscles of the Procedures it bills."""
    procedures: dict[int, Procedure] = {}
    for entry in claim.procedure or []:
        found = record.resolve(entry.procedureReference, claim)
        if isinstance(found, Procedure):
            procedures[entry.sequence] = found
    claim_ref = f"Claim/{claim.id}" if claim.id else "Claim"
    lines: list[ServiceLine] = []
    for item in claim.item or []:
        code = cpt_code_of(item.productOrService)
        if code is None:
            continue
        billed = _item_procedures(claim, item, procedures, code)
        sites = tuple(site for procedure in billed for site in body_sites_of(procedure, record))
        if not sites and item.bodySite is not None:
            sites = (BodySite(codings_of(item.bodySite), item.bodySite.text, _laterality_codes(item.bodySite)),)
        reasons = _item_diagnoses(claim, item, record)
        for procedure in billed:
            reasons += _reasons(procedure.reasonCode or [], procedure.reasonReference or [], record, procedure)
        quantity = item.quantity.value if item.quantity and item.quantity.value is not None else 1
        diagnoses = _item_diagnosis_entries(claim, item)
        performers = [p for procedure in billed for p in procedure_performers(procedure, record)]
        performers = performers or claim_item_performers(claim, item, record)
        places = [item.locationReference, claim.facility, *(p.location for p in billed), claim.provider,
                  *(Reference(reference=p.reference) for p in performers)]
        lines.append(ServiceLine(
            key=f"{claim_ref}#item-{item.sequence}",
            label=f"claim line {item.sequence}",
            resource_ref=claim_ref,
            item_sequence=item.sequence,
            code=code,
            date_of_service=_item_date(claim, item, billed),
            units=Decimal(str(quantity)),
            modifiers=tuple(c.code for m in item.modifier or [] for c in codings_of(m) if c.code),
            body_sites=sites,
            indications=reasons,
            injected_substances=tuple(s for p in billed for s in injected_substances(p, record)),
            described_as=described_as([item.productOrService, *(p.code for p in billed)]),
            performers=tuple(dict.fromkeys(performers)),
            service_state=first_state(places, record, claim) or encounter_state(record),
            documented=frozenset().union(*(documented_elements(procedure, record, diagnoses)
                                          for procedure in billed or [None])),
            is_procedure_record=bool(billed),
        ))
    return tuple(lines)


def is_about_patient(resource: Procedure | Condition, patient_id: str) -> bool:
    """Whether the resource's subject is ``Patient/<patient_id>`` (as a relative or absolute reference)."""
    subject = resource.subject.reference if resource.subject else None
    return _names_patient(subject, patient_id)


def _names_patient(reference: object, patient_id: str) -> bool:
    return isinstance(reference, str) and reference.rstrip("/").split("/")[-2:] == ["Patient", patient_id]


def _json_cpt_code(resource: dict[str, Any]) -> str | None:
    code = resource.get("code")
    codings = code.get("coding") if isinstance(code, dict) else None
    for coding in codings if isinstance(codings, list) else []:
        if (isinstance(coding, dict) and isinstance(coding.get("code"), str)
                and canonical_system(str(coding.get("system"))) == CPT_SYSTEM):
            return coding["code"]
    return None


def _json_performed_date(resource: dict[str, Any]) -> dt.date | None:
    period = resource.get("performedPeriod")
    value = resource.get("performedDateTime") or (period.get("start") if isinstance(period, dict) else None)
    if not isinstance(value, str) or len(value) < 10:
        return None
    try:
        return dt.date.fromisoformat(value[:10])
    except ValueError:
        return None


def prior_services(record: PatientRecord, patient_id: str,
                   exclude: Iterable[str] = ()) -> tuple[PriorService, ...]:
    """The patient's earlier Procedures with a CPT code, leaving out the ones being billed now and any
    that a server or client returned for another patient."""
    excluded = set(exclude)
    services: list[PriorService] = []
    seen: set[str] = set()
    for procedure in record.prior_procedures:
        reference = f"Procedure/{procedure.get('id')}"
        code = _json_cpt_code(procedure)
        subject = procedure.get("subject")
        if code is None or reference in excluded or reference in seen:
            continue
        if not _names_patient(subject.get("reference") if isinstance(subject, dict) else None, patient_id):
            continue
        if procedure.get("status") in ("entered-in-error", "not-done", "preparation"):
            continue
        seen.add(reference)
        services.append(PriorService(reference, code, _json_performed_date(procedure)))
    return tuple(services)


def condition_facts(record: PatientRecord, patient_id: str) -> tuple[ConditionFacts, ...]:
    """The patient's Conditions in the record (not those refuted or entered in error)."""
    facts = []
    for condition in record.all_of("Condition"):
        if not isinstance(condition, Condition) or not is_about_patient(condition, patient_id):
            continue
        verification = codings_of(condition.verificationStatus)
        if any(c.code in ("refuted", "entered-in-error") for c in verification):
            continue
        onset = as_date(condition.onsetDateTime) or (
            as_date(condition.onsetPeriod.start) if condition.onsetPeriod else None)
        status = next((c.code for c in codings_of(condition.clinicalStatus) if c.code), None)
        facts.append(ConditionFacts(f"Condition/{condition.id}", codings_of(condition.code), onset,
                                    as_date(condition.recordedDate), status))
    return tuple(facts)


def order_sign_context(patient_id: str, draft_orders: Bundle, record: PatientRecord,
                       evaluated_on: dt.date, signer: str | None = None) -> BillingContext:
    """The billing context of an ``order-sign`` call; ``signer`` is ``context.userId``."""
    lines = order_lines(draft_orders, record, Reference(reference=signer) if signer else None)
    return BillingContext(
        hook="order-sign",
        patient_id=patient_id,
        lines=lines,
        evaluated_on=evaluated_on,
        history=prior_services(record, patient_id, exclude=(line.resource_ref for line in lines)),
        missing_data=tuple(record.missing),
        coverage=coverage_facts(record, patient_id),
        conditions=condition_facts(record, patient_id),
    )


def claim_create_context(patient_id: str, claim: Claim, record: PatientRecord,
                         evaluated_on: dt.date) -> BillingContext:
    """The billing context of a ``claim-create`` call; the claim's own Procedures are not history."""
    record.enclosing = claim
    billed = []
    for reference in claim_procedure_references(claim):
        found = record.resolve(reference, claim)
        if isinstance(found, Procedure) and found.id:
            billed.append(f"Procedure/{found.id}")
    return BillingContext(
        hook="claim-create",
        patient_id=patient_id,
        lines=claim_lines(claim, record),
        evaluated_on=evaluated_on,
        history=prior_services(record, patient_id, exclude=billed),
        missing_data=tuple(record.missing),
        coverage=coverage_facts(record, patient_id, claim),
        conditions=condition_facts(record, patient_id),
    )
