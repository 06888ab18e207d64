"""Turning FHIR R4 resources into the billing context the rules read.

This is the only module of the engine that knows FHIR. It never fetches anything: the HTTP layer
hands it the resources it has (from the request, prefetch or the EHR's FHIR server) as a
``PatientRecord``, and it resolves references only within that record.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from functools import partial
from typing import Any

from needlecheck.mappings.cpt import is_dry_needling_code
from needlecheck.plugin.context import BillingContext, ConditionFacts, PriorService, ServiceLine
from needlecheck.plugin.fhir_documentation import documented_elements
from needlecheck.plugin.fhir_injectates import UsedDrugs, used_drugs
from needlecheck.plugin.fhir_parties import (
    claim_item_performers,
    coverage_facts,
    encounter_state,
    first_state,
    order_performers,
    procedure_performers,
)
from needlecheck.plugin.fhir_procedures import (
    ProcedureIdentity,
    cpt_spellings,
    is_any_of,
    json_identity,
    procedure_identity,
    same_as_any,
)
from needlecheck.plugin.fhir_record import PatientRecord, as_date, codings_of, json_codings
from needlecheck.plugin.fhir_view import NOT_PLAIN, FhirView, is_resource, json_date
from needlecheck.plugin.frozen import built_at_once
from needlecheck.plugin.terms import BodySite, Coding

LATERALITY_EXTENSION = "http://hl7.org/fhir/us/mcode/StructureDefinition/mcode-laterality-qualifier"
TARGET_BODY_STRUCTURE_EXTENSION = "http://hl7.org/fhir/StructureDefinition/procedure-targetBodyStructure"
BODY_SITE_REFERENCE_EXTENSION = "http://hl7.org/fhir/StructureDefinition/bodySite"


def cpt_code_of(concept: FhirView | None) -> str | None:
    """The CPT code of a concept; codes in other systems never count, whatever their digits."""
    spellings = cpt_spellings()
    for coding in codings_of(concept):
        if coding.code and coding.system in spellings:
            return coding.code
    return None


def _laterality_codes(element: Any) -> tuple[str, ...]:
    codes: list[str] = []
    for extension in getattr(element, "extension", None) or []:
        if extension.url == LATERALITY_EXTENSION:
            codes.extend(c.code for c in codings_of(extension.valueCodeableConcept) if c.code)
    return tuple(codes)


def _body_structure_site(structure: FhirView) -> BodySite:
    qualifiers = tuple(c.code for q in structure.locationQualifier or [] for c in codings_of(q) if c.code)
    text = (structure.location.text if structure.location else None) or structure.description
    return BodySite(codings_of(structure.location), text, qualifiers)


def body_sites_of(resource: FhirView, record: PatientRecord) -> tuple[BodySite, ...]:
    """Every body site of an order or Procedure, whichever of the four FHIR forms carries it."""
    plain = _plain_body_sites(resource.json)
    return plain if plain is not NOT_PLAIN else _body_sites_of(resource, record)


def _plain_extensions(json: dict[str, Any]) -> Any:
    """An element's extensions as JSON when each is an object with a string ``url`` (or none); else None."""
    extensions = json.get("extension")
    if extensions is None:
        return ()
    if extensions.__class__ is not list:
        return None
    for extension in extensions:
        if extension.__class__ is not dict:
            return None
        url = extension.get("url")
        if url is not None and url.__class__ is not str:
            return None
    return extensions


def _plain_body_sites(json: dict[str, Any]) -> Any:
    """``_body_sites_of`` read straight from the JSON, for the sites that name no BodyStructure (nearly all);
    ``NOT_PLAIN`` for anything else, which the views read (and name what is invalid)."""
    extensions = _plain_extensions(json)
    if extensions is None or any(e.get("url") == TARGET_BODY_STRUCTURE_EXTENSION for e in extensions):
        return NOT_PLAIN
    concepts = json.get("bodySite")
    if concepts is None:
        return ()
    if concepts.__class__ is not list:
        return NOT_PLAIN
    sites = []
    for concept in concepts:
        if concept.__class__ is not dict:
            return NOT_PLAIN
        extensions = _plain_extensions(concept)
        codings = json_codings(concept)
        text = concept.get("text")
        if extensions is None or codings is None or (text is not None and text.__class__ is not str):
            return NOT_PLAIN
        laterality: list[str] = []
        for extension in extensions:
            url = extension.get("url")
            if url == BODY_SITE_REFERENCE_EXTENSION:
                return NOT_PLAIN
            if url == LATERALITY_EXTENSION:
                value = extension.get("valueCodeableConcept")
                side = () if value is None else json_codings(value) if value.__class__ is dict else None
                if side is None:
                    return NOT_PLAIN
                laterality.extend(c.code for c in side if c.code)
        sites.append(BodySite(codings, text, tuple(laterality)))
    return tuple(sites)


def _body_sites_of(resource: FhirView, record: PatientRecord) -> tuple[BodySite, ...]:
    sites: list[BodySite] = []
    for concept in resource.bodySite or []:
        laterality = _laterality_codes(concept)
        codings = codings_of(concept)
        text = concept.text
        for extension in concept.extension or []:
            if extension.url != BODY_SITE_REFERENCE_EXTENSION:
                continue
            structure = record.resolve(extension.valueReference, resource)
            if is_resource(structure, "BodyStructure"):
                referenced = _body_structure_site(structure)
                laterality += referenced.laterality
                codings = codings or referenced.codings
                text = text or referenced.text
        sites.append(BodySite(codings, text, laterality))
    for extension in resource.extension or []:
        if extension.url != TARGET_BODY_STRUCTURE_EXTENSION:
            continue
        structure = record.resolve(extension.valueReference, resource)
        if is_resource(structure, "BodyStructure"):
            sites.append(_body_structure_site(structure))
    return tuple(sites)


def _reasons(codes: Iterable[FhirView], references: Iterable[FhirView], record: PatientRecord,
             container: Any) -> tuple[Coding, ...]:
    reasons = [coding for concept in codes for coding in codings_of(concept) or (Coding(None, None, concept.text),)]
    for reference in references:
        condition = record.resolve(reference, container)
        if is_resource(condition, "Condition") and condition.code:
            reasons.extend(codings_of(condition.code) or (Coding(None, None, condition.code.text),))
        else:
            # An unresolved reference still states that there is a reason; keep it as such.
            reasons.append(Coding(None, None, reference.display or reference.reference))
    return tuple(reasons)


def _order_date(order: FhirView) -> dt.date | None:
    if order.occurrenceDateTime is not None:
        return as_date(order.occurrenceDateTime)
    if order.occurrencePeriod is not None:
        return as_date(order.occurrencePeriod.start)
    return None


def performed_date(procedure: FhirView) -> dt.date | None:
    """The date a Procedure was performed, from performedDateTime or the start of performedPeriod."""
    if procedure.performedDateTime is not None:
        return as_date(procedure.performedDateTime)
    if procedure.performedPeriod is not None:
        return as_date(procedure.performedPeriod.start)
    return None


def described_as(concepts: Iterable[FhirView | None]) -> tuple[str, ...]:
    """The words the record uses for a service: the texts and code displays of its codes."""
    words = [c.text for c in concepts if c is not None and c.text]
    words += [coding.display for c in concepts for coding in codings_of(c) if coding.display]
    return tuple(dict.fromkeys(words))


def order_lines(draft_orders: FhirView, record: PatientRecord,
                signer: str | None = None) -> tuple[ServiceLine, ...]:
    """One line per draft ServiceRequest (or Procedure) with a CPT code; other orders are not ours.

    ``signer`` is the clinician signing (``context.userId``), taken as the performer of an order that
    names none.
    """
    lines: list[ServiceLine] = []
    for index, entry in enumerate(draft_orders.entry or [], start=1):
        order = entry.resource
        if not is_resource(order, "ServiceRequest", "Procedure"):
            continue
        code = cpt_code_of(order.code)
        if code is None:
            continue
        kind = order.get_resource_type()
        reference = f"{kind}/{order.id}" if order.id else f"{kind} in draftOrders entry {index}"
        performers = order_performers(order, record, signer)
        if is_resource(order, "ServiceRequest"):
            quantity = order.quantityQuantity.value if order.quantityQuantity else None
            units = Decimal(str(quantity)) if quantity is not None else Decimal(1)
            date_of_service = _order_date(order)
            drugs = UsedDrugs()
            places = list(order.locationReference or [])
        else:
            units, date_of_service = Decimal(1), performed_date(order)
            drugs = used_drugs(order, record)
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
            injected_substances=drugs.injected,
            drugs_route_unknown=drugs.route_unknown,
            described_as=described_as([order.code]),
            performers=tuple(performers),
            service_state=first_state([*places, *(p.reference for p in performers)], record,
                                      order) or encounter_state(record),
            documented=documented_elements(order, record) if is_dry_needling_code(code) else frozenset(),
            is_procedure_record=is_resource(order, "Procedure"),
        ))
    return tuple(lines)


def read_claim_sequences(claim: FhirView) -> None:
    """Read the sequence numbers that tie a claim's lines to its Procedures, diagnoses, care team and
    insurance, so that a malformed one is reported (``InvalidFhir``) before anything is looked up by them."""
    for part in (claim.item, claim.procedure, claim.diagnosis, claim.careTeam, claim.insurance):
        for element in part:
            _ = element.sequence


def claim_procedure_references(claim: FhirView) -> list[FhirView]:
    """References to the Procedures a claim bills, in the order of ``Claim.procedure``."""
    return [p.procedureReference for p in claim.procedure or [] if p.procedureReference is not None]


def _explicit_date(item: FhirView) -> dt.date | None:
    if item.servicedDate is not None:
        return as_date(item.servicedDate)
    if item.servicedPeriod is not None:
        return as_date(item.servicedPeriod.start)
    return None


def _one_day_of(claim: FhirView, item: FhirView) -> dt.date | None:
    """The line's own date, or the claim's billable period when it is a single day."""
    period = claim.billablePeriod
    if (day := _explicit_date(item)) is not None or period is None:
        return day
    start, end = as_date(period.start), as_date(period.end)
    return start if end is None or end == start else None


@built_at_once
@dataclass(frozen=True)
class _Billed:
    """A Procedure a claim line bills, with what identifies it."""

    procedure: FhirView
    identity: ProcedureIdentity


def _claim_procedures(claim: FhirView, record: PatientRecord) -> dict[int, _Billed]:
    procedures: dict[int, _Billed] = {}
    for entry in claim.procedure or []:
        found = record.resolve(entry.procedureReference, claim)
        if is_resource(found, "Procedure"):
            contained = (entry.procedureReference.reference or "").startswith("#")
            procedures[entry.sequence] = _Billed(found, procedure_identity(found, contained))
    return procedures


def _recorded_on(record: PatientRecord, patient_id: str, code: str, day: dt.date,
                 billed: list[ProcedureIdentity]) -> list[_Billed]:
    """The patient's recorded Procedures of ``code`` on ``day`` that no line bills yet, each once."""
    found: list[_Billed] = []
    for resource in _patients_procedures(record, patient_id):
        identity = json_identity(resource)
        if (identity.code, identity.day) != (code, day) or is_any_of(identity, billed):
            continue
        if is_any_of(identity, [b.identity for b in found]):
            continue
        procedure = record.resolve(identity.reference)
        if is_resource(procedure, "Procedure"):
            found.append(_Billed(procedure, identity))
    return found


@dataclass(frozen=True)
class ClaimBills:
    """The Procedures each claim line bills (by ``item.sequence``), and every Procedure the claim bills.

    ``billed`` also holds, for a line that bills one of several recorded Procedures of its code and date
    (which one is not known), the first of them: the charge is for one of them, so one is not history.
    """

    by_line: dict[int, list[_Billed]]
    billed: tuple[ProcedureIdentity, ...]


def billed_procedures(claim: FhirView, record: PatientRecord, patient_id: str) -> ClaimBills:
    """The Procedures each claim line (by ``item.sequence``) bills.

    A line with ``procedureSequence`` bills those Procedures, whatever their codes: the sender said so.
    A line without bills the claim's Procedures with its CPT code on its date, never one with another
    code: a 20552 line next to a 20560 line must not take the dry-needling Procedure's muscles and words.
    A claim's lone Procedure without a CPT code goes to the claim's lone line. A line still without a
    Procedure bills the patient's one recorded Procedure with its code on its date (the Procedure the
    charge is for, which the EHR did not put in ``Claim.procedure``); with several, the line takes none
    of their muscles, but one of them is billed (see ``ClaimBills``).
    """
    procedures = _claim_procedures(claim, record)
    items = [item for item in claim.item or [] if cpt_code_of(item.productOrService) is not None]
    chosen: dict[int, list[_Billed]] = {}
    for item in items:
        code, day = cpt_code_of(item.productOrService), _explicit_date(item)
        if item.procedureSequence:
            chosen[item.sequence] = [procedures[seq] for seq in item.procedureSequence if seq in procedures]
            continue
        chosen[item.sequence] = [billed for billed in procedures.values()
                                 if cpt_code_of(billed.procedure.code) == code
                                 and (day is None or billed.identity.day in (None, day))]
    if len(items) == 1 and len(procedures) == 1 and not items[0].procedureSequence:
        [only] = procedures.values()
        if not chosen[items[0].sequence] and cpt_code_of(only.procedure.code) is None:
            chosen[items[0].sequence] = [only]
    taken = [billed.identity for billed in procedures.values()]
    taken += [billed.identity for bills in chosen.values() for billed in bills]
    for item in items:
        code, day = cpt_code_of(item.productOrService), _one_day_of(claim, item)
        if chosen[item.sequence] or item.procedureSequence or code is None or day is None:
            continue
        candidates = _recorded_on(record, patient_id, code, day, taken)
        if len(candidates) == 1:
            chosen[item.sequence] = candidates
        if candidates:
            taken.append(candidates[0].identity)
    return ClaimBills(chosen, tuple(taken))


def _item_diagnosis_entries(claim: FhirView, item: FhirView) -> list[FhirView]:
    wanted = set(item.diagnosisSequence or [])
    return [d for d in claim.diagnosis or [] if not wanted or d.sequence in wanted]


def _item_diagnoses(claim: FhirView, item: FhirView, record: PatientRecord) -> tuple[Coding, ...]:
    chosen = _item_diagnosis_entries(claim, item)
    concepts = [d.diagnosisCodeableConcept for d in chosen if d.diagnosisCodeableConcept is not None]
    references = [d.diagnosisReference for d in chosen if d.diagnosisReference is not None]
    return _reasons(concepts, references, record, claim)


def _item_date(claim: FhirView, item: FhirView, procedures: list[FhirView]) -> dt.date | None:
    if (day := _explicit_date(item)) is not None:
        return day
    dates = [performed_date(p) for p in procedures]
    return next((d for d in dates if d), None) or (
        as_date(claim.billablePeriod.start) if claim.billablePeriod else None)


def claim_lines(claim: FhirView, record: PatientRecord, patient_id: str = "",
                bills: ClaimBills | None = None) -> tuple[ServiceLine, ...]:
    """One line per claim item with a CPT code, with the muscles of the Procedures it bills
    (``bills``, from ``billed_procedures``)."""
    bills = billed_procedures(claim, record, patient_id) if bills is None else bills
    claim_ref = f"Claim/{claim.id}" if claim.id else "Claim"
    lines: list[ServiceLine] = []
    for item in claim.item or []:
        code = cpt_code_of(item.productOrService)
        if code is None:
            continue
        billed = [b.procedure for b in bills.by_line.get(item.sequence, [])]
        sites = tuple(site for procedure in billed for site in body_sites_of(procedure, record))
        if not sites and item.bodySite is not None:
            sites = (BodySite(codings_of(item.bodySite), item.bodySite.text, _laterality_codes(item.bodySite)),)
        reasons = _item_diagnoses(claim, item, record)
        used = [used_drugs(procedure, record) for procedure in billed]
        for procedure in billed:
            reasons += _reasons(procedure.reasonCode or [], procedure.reasonReference or [], record, procedure)
        quantity = item.quantity.value if item.quantity and item.quantity.value is not None else 1
        diagnoses = _item_diagnosis_entries(claim, item)
        performers = [p for procedure in billed for p in procedure_performers(procedure, record)]
        performers = performers or claim_item_performers(claim, item, record)
        places = [item.locationReference, claim.facility, *(p.location for p in billed), claim.provider,
                  *(p.reference for p in performers)]
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
            injected_substances=tuple(name for drugs in used for name in drugs.injected),
            drugs_route_unknown=tuple(name for drugs in used for name in drugs.route_unknown),
            described_as=described_as([item.productOrService, *(p.code for p in billed)]),
            performers=tuple(dict.fromkeys(performers)),
            service_state=first_state(places, record, claim) or encounter_state(record),
            documented=frozenset().union(*(documented_elements(procedure, record, diagnoses)
                                          for procedure in billed or [None])) if is_dry_needling_code(code)
            else frozenset(),
            is_procedure_record=bool(billed),
        ))
    return tuple(lines)


def is_about_patient(resource: FhirView, patient_id: str) -> bool:
    """Whether the resource's subject is ``Patient/<patient_id>`` (as a relative or absolute reference)."""
    subject = resource.subject.reference if resource.subject else None
    return _names_patient(subject, patient_id)


def _names_patient(reference: object, patient_id: str) -> bool:
    if not isinstance(reference, str):
        return False
    # Nearly every reference is the relative one; an absolute URL (or a trailing slash) is split.
    return reference == f"Patient/{patient_id}" or reference.rstrip("/").split("/")[-2:] == ["Patient", patient_id]


def _patients_procedures(record: PatientRecord, patient_id: str) -> list[dict[str, Any]]:
    """The recorded Procedures (as JSON) of ``patient_id``, leaving out those not done or entered in error."""
    found = []
    own = f"Patient/{patient_id}"
    for procedure in record.prior_procedures:
        subject = procedure.get("subject")
        reference = subject.get("reference") if isinstance(subject, dict) else None
        if reference != own and not _names_patient(reference, patient_id):
            continue
        if procedure.get("status") in ("entered-in-error", "not-done", "preparation"):
            continue
        found.append(procedure)
    return found


def _based_on(procedure: dict[str, Any]) -> set[str]:
    references = [r.get("reference") for r in procedure.get("basedOn") or [] if isinstance(r, dict)]
    return {"/".join(r.rstrip("/").split("/")[-2:]) for r in references if isinstance(r, str)}


# ``PriorService(...)`` without the Python frame of a named tuple's ``__new__``: every earlier Procedure of every call.
_new_prior_service = partial(tuple.__new__, PriorService)


def prior_services(record: PatientRecord, patient_id: str, billed: Iterable[ProcedureIdentity] = (),
                   orders: Iterable[str] = ()) -> tuple[PriorService, ...]:
    """The patient's earlier Procedures with a CPT code, each once.

    Left out: the Procedures being billed now (``billed``, by identity: id, identifier or a contained
    copy, see ``plugin.fhir_procedures``), the Procedures performed for the orders being signed
    (``orders``, ``Type/id`` named in ``basedOn``), and any that a server or client returned for
    another patient.
    """
    billed, signed = list(billed), set(orders)
    excluded = same_as_any(billed) if billed else None
    services: list[PriorService] = []
    seen_references: set[str] = set()
    seen_identifiers: set[tuple[str, str]] = set()
    for procedure in _patients_procedures(record, patient_id):
        identity = json_identity(procedure)
        reference, _, identifiers, code, day, _, _ = identity
        if code is None or reference is None or (excluded is not None and excluded(identity)):
            continue
        if reference in seen_references or (identifiers and identifiers & seen_identifiers):
            continue  # the same Procedure again, under its id or another one carrying its identifier
        if signed and procedure.get("basedOn") and _based_on(procedure) & signed:
            continue
        seen_references.add(reference)
        if identifiers:
            seen_identifiers |= identifiers
        services.append(_new_prior_service((reference, code, day)))
    return tuple(services)


def condition_facts(record: PatientRecord, patient_id: str) -> tuple[ConditionFacts, ...]:
    """The patient's Conditions in the record (not those refuted or entered in error)."""
    facts = []
    for condition in record.all_of("Condition"):
        if not is_resource(condition, "Condition"):
            continue
        fact = _plain_condition_facts(condition, patient_id)
        if fact is NOT_PLAIN:
            fact = _condition_facts(condition, patient_id)  # the views name what is invalid
        if fact is not None:
            facts.append(fact)
    return tuple(facts)


def _condition_facts(condition: FhirView, patient_id: str) -> ConditionFacts | None:
    if not is_about_patient(condition, patient_id):
        return None
    verification = codings_of(condition.verificationStatus)
    if any(c.code in ("refuted", "entered-in-error") for c in verification):
        return None
    onset = as_date(condition.onsetDateTime) or (
        as_date(condition.onsetPeriod.start) if condition.onsetPeriod else None)
    status = next((c.code for c in codings_of(condition.clinicalStatus) if c.code), None)
    return ConditionFacts(f"Condition/{condition.id}", codings_of(condition.code), onset,
                          as_date(condition.recordedDate), status)


def _plain_concept(json: dict[str, Any], key: str) -> Any:
    concept = json.get(key)
    if concept is None:
        return ()
    return json_codings(concept) if concept.__class__ is dict else None


def _plain_condition_facts(condition: FhirView, patient_id: str) -> Any:
    """``_condition_facts`` read straight from the JSON (every Condition of every call is read); ``NOT_PLAIN``
    where the views would find an element invalid, or might."""
    json = condition.json
    subject = json.get("subject")
    if subject is None:
        reference = None
    elif subject.__class__ is dict:
        reference = subject.get("reference")
        if reference is not None and reference.__class__ is not str:
            return NOT_PLAIN
    else:
        return NOT_PLAIN
    if not _names_patient(reference, patient_id):
        return None
    verification = _plain_concept(json, "verificationStatus")
    if verification is None:
        return NOT_PLAIN
    if any(c.code in ("refuted", "entered-in-error") for c in verification):
        return None
    onset = json_date("datetime", json.get("onsetDateTime"))
    if onset is NOT_PLAIN:
        return NOT_PLAIN
    onset = as_date(onset)
    if onset is None and (period := json.get("onsetPeriod")) is not None:
        if period.__class__ is not dict:
            return NOT_PLAIN
        onset = json_date("datetime", period.get("start"))
        if onset is NOT_PLAIN:
            return NOT_PLAIN
        onset = as_date(onset)
    status, codes = _plain_concept(json, "clinicalStatus"), _plain_concept(json, "code")
    recorded = json_date("datetime", json.get("recordedDate"))
    if status is None or codes is None or recorded is NOT_PLAIN or json.get("id").__class__ is not str:
        return NOT_PLAIN
    return ConditionFacts(f"Condition/{json['id']}", codes, onset, as_date(recorded),
                          next((c.code for c in status if c.code), None))


def order_sign_context(patient_id: str, draft_orders: FhirView, record: PatientRecord,
                       evaluated_on: dt.date, signer: str | None = None) -> BillingContext:
    """The billing context of an ``order-sign`` call; ``signer`` is ``context.userId``."""
    lines = order_lines(draft_orders, record, signer)
    return BillingContext(
        hook="order-sign",
        patient_id=patient_id,
        lines=lines,
        evaluated_on=evaluated_on,
        history=prior_services(
            record, patient_id,
            billed=[procedure_identity(entry.resource) for entry in draft_orders.entry or []
                    if is_resource(entry.resource, "Procedure")],
            orders=(line.resource_ref for line in lines)),
        missing_data=tuple(record.missing),
        coverage=coverage_facts(record, patient_id),
        conditions=condition_facts(record, patient_id),
    )


def claim_create_context(patient_id: str, claim: FhirView, record: PatientRecord,
                         evaluated_on: dt.date) -> BillingContext:
    """The billing context of a ``claim-create`` call; the claim's own Procedures are not history."""
    record.enclosing = claim
    bills = billed_procedures(claim, record, patient_id)
    return BillingContext(
        hook="claim-create",
        patient_id=patient_id,
        lines=claim_lines(claim, record, patient_id, bills),
        evaluated_on=evaluated_on,
        history=prior_services(record, patient_id, billed=bills.billed),
        missing_data=tuple(record.missing),
        coverage=coverage_facts(record, patient_id, claim),
        conditions=condition_facts(record, patient_id),
    )
