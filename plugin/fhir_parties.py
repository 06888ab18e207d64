"""Who pays, who furnishes the service and where: the FHIR side of the payer, performer and scope rules.

Coverage comes from the claim's own ``insurance`` when it names one, else from the patient's active
Coverage in the record; performers from the Procedure, the claim's care team or the order; the
state from the Location or Organization where the service is furnished.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from needlecheck.plugin.context import CoverageFacts, Performer
from needlecheck.plugin.fhir_record import PatientRecord, codings_of, json_codings, reference_target
from needlecheck.plugin.fhir_view import NOT_PLAIN, FhirView, is_resource
from needlecheck.plugin.terms import Coding


def _names_patient(reference: FhirView | None, patient_id: str) -> bool:
    target = reference_target(reference)
    return isinstance(target, str) and target.rstrip("/").split("/")[-2:] == ["Patient", patient_id]


def _coverage_facts(coverage: FhirView, record: PatientRecord) -> CoverageFacts:
    plain = _plain_coverage_facts(coverage, record)
    return plain if plain is not NOT_PLAIN else _viewed_coverage_facts(coverage, record)


def _plain_string(json: dict[str, Any], key: str) -> Any:
    value = json.get(key)
    return value if value is None or value.__class__ is str else NOT_PLAIN


def _plain_coverage_facts(coverage: FhirView, record: PatientRecord) -> Any:
    """``_viewed_coverage_facts`` read straight from the JSON (every call reads the coverage) when its payors name
    no Organization of the record and every element read is plain; else ``NOT_PLAIN``, for the views."""
    json = coverage.json
    identifiers: list[tuple[str | None, str]] = []
    names: list[str] = []
    payors = json.get("payor")
    if payors is None:
        payors = []
    elif payors.__class__ is not list:
        return NOT_PLAIN
    for payor in payors:
        if payor.__class__ is not dict:
            return NOT_PLAIN
        identifier = payor.get("identifier")
        if identifier is not None:
            if identifier.__class__ is not dict:
                return NOT_PLAIN
            system, value = _plain_string(identifier, "system"), _plain_string(identifier, "value")
            if system is NOT_PLAIN or value is NOT_PLAIN:
                return NOT_PLAIN
            if value:
                identifiers.append((system, value))
        display, reference = _plain_string(payor, "display"), _plain_string(payor, "reference")
        if display is NOT_PLAIN or reference is NOT_PLAIN:
            return NOT_PLAIN
        if display:
            names.append(display)
        if is_resource(record.resolve(reference, coverage), "Organization"):
            return NOT_PLAIN
    resource_id, types = _plain_string(json, "id"), json.get("type")
    type_codes = () if types is None else json_codings(types) if types.__class__ is dict else None
    classes = json.get("class")
    if classes is None:
        classes = []
    if resource_id is NOT_PLAIN or type_codes is None or classes.__class__ is not list:
        return NOT_PLAIN
    plans: list[str] = []
    for cls in classes:
        if cls.__class__ is not dict:
            return NOT_PLAIN
        for text in (_plain_string(cls, "value"), _plain_string(cls, "name")):
            if text is NOT_PLAIN:
                return NOT_PLAIN
            if text:
                plans.append(text)
    return CoverageFacts(
        reference=f"Coverage/{resource_id}" if resource_id else "Coverage",
        type_codes=type_codes,
        payor_identifiers=tuple(dict.fromkeys(identifiers)),
        payor_names=tuple(dict.fromkeys(names)),
        plan_names=tuple(dict.fromkeys(plans)),
    )


def _viewed_coverage_facts(coverage: FhirView, record: PatientRecord) -> CoverageFacts:
    identifiers: list[tuple[str | None, str]] = []
    names: list[str] = []
    for payor in coverage.payor or []:
        if payor.identifier is not None and payor.identifier.value:
            identifiers.append((payor.identifier.system, payor.identifier.value))
        if payor.display:
            names.append(payor.display)
        organization = record.resolve(payor, coverage)
        if is_resource(organization, "Organization"):
            identifiers.extend((i.system, i.value) for i in organization.identifier or [] if i.value)
            names.extend(name for name in (organization.name, *(organization.alias or [])) if name)
    return CoverageFacts(
        reference=f"Coverage/{coverage.id}" if coverage.id else "Coverage",
        type_codes=codings_of(coverage.type),
        payor_identifiers=tuple(dict.fromkeys(identifiers)),
        payor_names=tuple(dict.fromkeys(names)),
        plan_names=tuple(dict.fromkeys(text for cls in coverage.class_fhir or [] for text in (cls.value, cls.name)
                                       if text)),
    )


def coverage_facts(record: PatientRecord, patient_id: str, claim: FhirView | None = None) -> CoverageFacts | None:
    """The coverage that pays for the service: the claim's focal insurance, else the patient's active Coverage."""
    if claim is not None:
        insurances = sorted(claim.insurance or [], key=lambda insurance: not insurance.focal)
        for insurance in insurances:
            coverage = record.resolve(insurance.coverage, claim)
            if is_resource(coverage, "Coverage"):
                return _coverage_facts(coverage, record)
    candidates = [c for c in record.all_of("Coverage") if is_resource(c, "Coverage")
                  and c.status == "active" and _names_patient(c.beneficiary, patient_id)]
    # Several active coverages: the one with the lowest order pays first.
    candidates.sort(key=lambda c: c.order if c.order is not None else 1_000_000)
    return _coverage_facts(candidates[0], record) if candidates else None


def _roles_by_practitioner(record: PatientRecord) -> dict[str, list[FhirView]]:
    roles: dict[str, list[FhirView]] = {}
    for role in record.all_of("PractitionerRole"):
        target = role.practitioner.reference if role.practitioner else None
        if target:
            roles.setdefault("/".join(target.rstrip("/").split("/")[-2:]), []).append(role)
    return roles


def _roles_of(practitioner_ref: str, record: PatientRecord) -> list[FhirView]:
    return record.derived(_roles_by_practitioner).get(practitioner_ref, [])


PARTY_TYPES = frozenset({"Practitioner", "PractitionerRole", "Location", "Organization"})


def _references_of(resource: Any) -> list[FhirView | None]:
    if is_resource(resource, "ServiceRequest"):
        return [*(resource.performer or []), *(resource.locationReference or [])]
    if is_resource(resource, "Procedure"):
        return [*(p.actor for p in resource.performer or []), *(p.onBehalfOf for p in resource.performer or []),
                resource.location]
    if is_resource(resource, "Claim"):
        return [*(member.provider for member in resource.careTeam or []),
                *(item.locationReference for item in resource.item or []), resource.facility, resource.provider]
    if is_resource(resource, "PractitionerRole"):
        return [resource.practitioner, *(resource.location or []), resource.organization]
    if is_resource(resource, "Location"):
        return [resource.managingOrganization]
    if is_resource(resource, "Encounter"):
        return [*(loc.location for loc in resource.location or []), resource.serviceProvider]
    return []


def party_references(resources: Iterable[Any], record: PatientRecord) -> list[str]:
    """``Type/id`` of the practitioners, roles, locations and organizations ``resources`` name that the record
    cannot resolve: what the performer, eligibility and scope-of-practice rules need read from the server."""
    wanted: list[str] = []
    for resource in resources:
        for reference in _references_of(resource):
            target = reference_target(reference)
            if not target or target.startswith("#") or record.resolve(reference, resource) is not None:
                continue
            parts = target.rstrip("/").split("/")
            if len(parts) >= 2 and parts[-2] in PARTY_TYPES:
                wanted.append("/".join(parts[-2:]))
    return list(dict.fromkeys(wanted))


def _names_a_practitioner(target: str) -> bool:
    parts = target.rstrip("/").split("/")
    return len(parts) >= 2 and parts[-2] in ("Practitioner", "PractitionerRole")


def performer_from(reference: FhirView | str | None, record: PatientRecord, container: Any = None,
                   extra_codes: Iterable[Coding] = ()) -> Performer | None:
    """A Practitioner or PractitionerRole with the codes that say what kind of provider they are.

    A reference the record cannot resolve is still a performer, without codes: the rules can then tell
    "someone we could not read" (whose profession may decide the scope of practice) from "no one named".
    """
    if not extra_codes:
        target = reference_target(reference)
        if target and not target.startswith("#"):
            # Every line names the same clinician: the signer, the ordering provider, the claim's care team.
            return record.derived(_performer_at, target)
    return _performer(reference, record, container, extra_codes)


def _performer_at(record: PatientRecord, target: str) -> Performer | None:
    return _performer(target, record)


def _performer(reference: FhirView | str | None, record: PatientRecord, container: Any = None,
               extra_codes: Iterable[Coding] = ()) -> Performer | None:
    target = record.resolve(reference, container)
    codes: list[Coding] = list(extra_codes)
    if is_resource(target, "PractitionerRole"):
        codes.extend(c for concept in target.code or [] for c in codings_of(concept))
        practitioner = record.resolve(target.practitioner, target)
        label = f"PractitionerRole/{target.id}"
    elif is_resource(target, "Practitioner"):
        practitioner, label = target, f"Practitioner/{target.id}"
    else:
        target = reference_target(reference)
        if not target or not (codes or _names_a_practitioner(target)):
            return None
        return Performer(target, tuple(codes))
    if is_resource(practitioner, "Practitioner"):
        codes.extend(c for q in practitioner.qualification or [] for c in codings_of(q.code))
        if is_resource(target, "Practitioner") and practitioner.id:
            # A Practitioner's specialty lives in its roles; the record holds the roles prefetch found.
            for role in _roles_of(f"Practitioner/{practitioner.id}", record):
                codes.extend(c for concept in role.code or [] for c in codings_of(concept))
    return Performer(label, tuple(dict.fromkeys(codes)))


def procedure_performers(procedure: FhirView, record: PatientRecord) -> list[Performer]:
    """The performers a Procedure names."""
    found = [performer_from(p.actor, record, procedure) for p in procedure.performer or []]
    return [performer for performer in found if performer is not None]


def claim_item_performers(claim: FhirView, item: FhirView, record: PatientRecord) -> list[Performer]:
    """The care-team members a claim line names, else the claim's care team, else the billing provider."""
    team = {member.sequence: member for member in claim.careTeam or []}
    chosen = [team[seq] for seq in item.careTeamSequence or [] if seq in team] or list(team.values())
    found = [performer_from(member.provider, record, claim, codings_of(member.qualification)) for member in chosen]
    performers = [performer for performer in found if performer is not None]
    if not performers and claim.provider is not None:
        provider = performer_from(claim.provider, record, claim)
        performers = [provider] if provider is not None else []
    return performers


def _state_of(address: FhirView | None) -> str | None:
    # Address.state is free text; only a two-letter postal code can be matched against the scope table.
    state = (address.state or "").strip().upper() if address else ""
    return state if len(state) == 2 and state.isalpha() else None


def state_at(reference: FhirView | str | None, record: PatientRecord, container: Any = None) -> str | None:
    """The US state of a Location or Organization, or where a PractitionerRole or Practitioner works."""
    target = reference_target(reference)
    if target and not target.startswith("#"):
        return record.derived(_state_at, target)  # each line asks for the same few places
    return _state_of_resource(record.resolve(reference, container), record)


def _state_at(record: PatientRecord, target: str) -> str | None:
    return _state_of_resource(record.resolve(target), record)


def _state_of_resource(target: FhirView | None, record: PatientRecord) -> str | None:
    if is_resource(target, "Location"):
        return _state_of(target.address) or state_at(target.managingOrganization, record, target)
    if is_resource(target, "Organization"):
        return next((s for s in (_state_of(a) for a in target.address or []) if s), None)
    if is_resource(target, "PractitionerRole"):
        return first_state([*(target.location or []), target.organization], record, target)
    if is_resource(target, "Practitioner") and target.id:
        # A practitioner works where their roles are; the record holds the roles prefetch found.
        for role in _roles_of(f"Practitioner/{target.id}", record):
            state = first_state([*(role.location or []), role.organization], record, role)
            if state:
                return state
    return None


def first_state(references: Iterable[FhirView | str | None], record: PatientRecord,
                container: Any = None) -> str | None:
    """The state of the first reference that leads to one."""
    for reference in references:
        state = state_at(reference, record, container)
        if state:
            return state
    return None


def encounter_state(record: PatientRecord) -> str | None:
    """The state of the encounter in the record: its locations, then its service provider."""
    return record.derived(_encounter_state)


def _encounter_state(record: PatientRecord) -> str | None:
    for encounter in record.all_of("Encounter"):
        if is_resource(encounter, "Encounter"):
            state = first_state([*(loc.location for loc in encounter.location or []), encounter.serviceProvider],
                                record, encounter)
            if state:
                return state
    return None


def order_performers(order: FhirView, record: PatientRecord,
                     signer: str | None) -> list[Performer]:
    """Who will perform an order: its performers, else the clinician signing it.

    An order that names no performer is taken to be carried out by whoever signs it, as when a
    therapist writes their own plan; the signer is ``context.userId``.
    """
    if is_resource(order, "Procedure"):
        performers = procedure_performers(order, record)
    else:
        performers = [p for p in (performer_from(ref, record, order) for ref in order.performer or []) if p]
    if not performers and signer is not None:
        performer = performer_from(signer, record)
        performers = [performer] if performer is not None else []
    return performers
