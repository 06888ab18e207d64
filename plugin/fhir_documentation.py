"""Which documentation elements an order or a performed Procedure shows: the FHIR side of DN-DOC-010.

``documented_elements`` returns ids of ``mappings/documentation_elements.csv``. Structured FHIR decides
wherever FHIR has a place for the element (Condition.onset[x], performed[x], basedOn a CarePlan,
complication, outcome, a treatment Consent ...). Where an element lives only in prose, a few plain
phrases in the notes, a non-generated narrative or a linked text report count; they are listed below,
and a phrase can only add an element, never remove one.

Three elements are not decided here because the service line already carries them: ``muscles-named``
(``line.body_sites``), ``indication`` (``line.indications``) and ``provider-qualification``
(``line.performers`` with codes). DN-DOC-010 reads those from the line.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterator, Sequence
from typing import Any

from needlecheck.mappings.code_systems import canonical_system
from needlecheck.mappings.documentation import AppliesTo, DocumentationElement, documentation_elements
from needlecheck.plugin.fhir_record import PatientRecord, codings_of
from needlecheck.plugin.fhir_view import NOT_PLAIN, FhirView, is_resource, json_date

SYMPTOM_DURATION = "symptom-duration"
TRIGGER_POINT_FINDINGS = "trigger-point-findings"
PLAN_OF_CARE = "plan-of-care"
NO_INJECTATE_STATEMENT = "no-injectate-statement"
SESSION_DATE = "session-date"
TECHNIQUE = "technique"
RESPONSE_AND_COMPLICATIONS = "response-and-complications"
PAIN_FUNCTION_OUTCOME = "pain-function-outcome"
INFORMED_CONSENT = "informed-consent"

# The phrases that count as documenting an element in free text (matched case-insensitively).
# "dry needl..." counts as the no-injectate statement: the word "dry" says nothing was injected.
PHRASES: dict[str, tuple[str, ...]] = {
    NO_INJECTATE_STATEMENT: ("no injectate", "without injection", "no injection", "nothing was injected",
                             "nothing injected", "dry needl"),
    TRIGGER_POINT_FINDINGS: ("trigger point", "taut band", "referred pain"),
    TECHNIQUE: ("gauge", "depth", "piston"),
    RESPONSE_AND_COMPLICATIONS: ("twitch", "tolerated", "complication", "adverse"),
    PAIN_FUNCTION_OUTCOME: ("nprs", "numeric pain rating", "visual analog", "pain scale", "oswestry",
                            "neck disability index"),
    INFORMED_CONSENT: ("consent",),
}
# One search per element: a note is searched for every phrase at once.
_PHRASE_PATTERNS = {element: re.compile("|".join(map(re.escape, phrases))) for element, phrases in PHRASES.items()}
TREATMENT_CONSENT_SCOPE = ("http://terminology.hl7.org/CodeSystem/consentscope", "treatment")
# A linked text report is read up to this many characters; a procedure note is far shorter.
REPORT_TEXT_LIMIT = 100_000
_TAG = re.compile(r"<[^>]+>")


def documented_elements(resource: FhirView | None, record: PatientRecord,
                        claim_diagnoses: Sequence[FhirView] = ()) -> frozenset[str]:
    """The documentation element ids that an order or Procedure (and the claim diagnoses of its line) show.

    ``resource`` is the draft ServiceRequest or Procedure of an order line, or a Procedure a claim line
    bills (call once per billed Procedure and take the union; None for a claim line that bills none).
    ``claim_diagnoses`` are the Claim.diagnosis entries of the claim line: their Conditions can show
    how long the symptoms have lasted. References resolve through ``record`` (contained resources of
    ``resource``, then of ``record.enclosing``).
    """
    found: set[str] = set()
    if _symptom_duration_shown(resource, record, claim_diagnoses):
        found.add(SYMPTOM_DURATION)
    if resource is None:
        return frozenset(found)
    is_procedure = is_resource(resource, "Procedure")
    # An order plans the service: what only a performed Procedure can show is not shown by an order, and not
    # looked for.
    wanted = _wanted(documentation_elements(), is_procedure)
    lowered = " \n".join(_texts_of(resource, record)).lower()
    found.update(element for element, pattern in _PHRASE_PATTERNS.items()
                 if element in wanted and pattern.search(lowered))
    if TRIGGER_POINT_FINDINGS in wanted and _finding_observations_mention_trigger_points(resource, record):
        found.add(TRIGGER_POINT_FINDINGS)
    if PLAN_OF_CARE in wanted and _based_on_care_plan(resource, record, seen=set()):
        found.add(PLAN_OF_CARE)
    if INFORMED_CONSENT in wanted and _has_treatment_consent(resource, record):
        found.add(INFORMED_CONSENT)
    if is_procedure:
        found.update(_procedure_elements(resource, record))
    return frozenset(found if is_procedure else found & wanted)


_WANTED: dict[tuple[int, bool], tuple[dict[str, DocumentationElement], frozenset[str]]] = {}


def _wanted(elements: dict[str, DocumentationElement], is_procedure: bool) -> frozenset[str]:
    """The elements looked for in an order or a Procedure (the same for every one: worked out once per table)."""
    key = (id(elements), is_procedure)
    held = _WANTED.get(key)
    if held is None or held[0] is not elements:
        wanted = frozenset(
            e for e in (*PHRASES, SYMPTOM_DURATION, TRIGGER_POINT_FINDINGS, PLAN_OF_CARE, INFORMED_CONSENT)
            if is_procedure or (e in elements and elements[e].applies_to is AppliesTo.ORDER_AND_PROCEDURE))
        held = _WANTED[key] = (elements, wanted)
    return held[1]


def _procedure_elements(procedure: FhirView, record: PatientRecord) -> set[str]:
    found: set[str] = set()
    performed = (procedure.performedDateTime, procedure.performedPeriod, procedure.performedString,
                 procedure.performedAge, procedure.performedRange)
    if any(value is not None for value in performed):
        found.add(SESSION_DATE)
    if _names_a_needle(procedure, record):
        found.add(TECHNIQUE)
    if procedure.complication or procedure.complicationDetail or procedure.followUp:
        found.add(RESPONSE_AND_COMPLICATIONS)
    if procedure.outcome is not None or _has_outcome_observation(procedure, record):
        found.add(PAIN_FUNCTION_OUTCOME)
    return found


def _concept_words(concept: FhirView | None) -> str:
    if concept is None:
        return ""
    return " ".join([concept.text or "", *(c.display or "" for c in codings_of(concept))])


def _texts_of(resource: FhirView, record: PatientRecord) -> Iterator[str]:
    """The prose a clinician wrote for the service: notes, a narrative that is not generated, text reports."""
    for annotation in resource.note or []:
        if annotation.text:
            yield annotation.text
    # A generated narrative only repeats the structured data (e.g. the code's "without injection(s)").
    if resource.text is not None and resource.text.status != "generated" and resource.text.div:
        yield _TAG.sub(" ", resource.text.div)
    if is_resource(resource, "Procedure"):
        for reference in resource.report or []:
            yield from _report_texts(record.resolve(reference, resource))


def _report_texts(report: Any) -> Iterator[str]:
    if is_resource(report, "DiagnosticReport"):
        if report.conclusion:
            yield report.conclusion
        for attachment in report.presentedForm or []:
            yield from _attachment_text(attachment)
    elif is_resource(report, "DocumentReference"):
        if report.description:
            yield report.description
        for content in report.content or []:
            yield from _attachment_text(content.attachment)


def _attachment_text(attachment: FhirView | None) -> Iterator[str]:
    # Only inline plain text is read; a PDF or a URL is a document we cannot see into.
    if attachment is None or not attachment.data or not (attachment.contentType or "").startswith("text/plain"):
        return
    try:
        raw = base64.b64decode(attachment.data)
    except (binascii.Error, ValueError):
        return
    yield raw[:REPORT_TEXT_LIMIT].decode("utf-8", errors="replace")


def _reason_references(resource: FhirView) -> list[FhirView]:
    references = list(resource.reasonReference or [])
    if is_resource(resource, "ServiceRequest"):
        references += list(resource.supportingInfo or [])
    return references


def _finding_observations_mention_trigger_points(resource: FhirView, record: PatientRecord) -> bool:
    phrases = PHRASES[TRIGGER_POINT_FINDINGS]
    for reference in _reason_references(resource):
        observation = record.resolve(reference, resource)
        if not is_resource(observation, "Observation"):
            continue
        words = [_concept_words(observation.code), _concept_words(observation.valueCodeableConcept),
                 observation.valueString or "", *(note.text for note in observation.note or [] if note.text)]
        if any(phrase in " ".join(words).lower() for phrase in phrases):
            return True
    return False


def _based_on_care_plan(resource: FhirView, record: PatientRecord, seen: set[int]) -> bool:
    """Whether the service rests on a CarePlan, directly or through the order(s) it is based on."""
    if id(resource) in seen:
        return False
    seen.add(id(resource))
    for reference in resource.basedOn or []:
        target = record.resolve(reference, resource)
        if is_resource(target, "CarePlan") or reference.type == "CarePlan":
            return True
        if target is None and (reference.reference or "").split("/")[-2:-1] == ["CarePlan"]:
            # The plan is not in the record, but the reference says a plan of care exists.
            return True
        if is_resource(target, "ServiceRequest") and _based_on_care_plan(target, record, seen):
            return True
    return False


def _has_treatment_consent(resource: FhirView, record: PatientRecord) -> bool:
    """An active Consent to treatment of the same patient, referenced by the order or present in the record."""
    consents: list[Any] = [record.resolve(ref, resource) for ref in _reason_references(resource)]
    consents += record.all_of("Consent")
    subject = resource.subject.reference if resource.subject else None
    for consent in consents:
        if not is_resource(consent, "Consent") or consent.status != "active":
            continue
        patient = consent.patient.reference if consent.patient else None
        if subject and patient and patient.split("/")[-2:] != subject.split("/")[-2:]:
            continue
        scope = codings_of(consent.scope)
        if any((c.system, c.code) == TREATMENT_CONSENT_SCOPE for c in scope):
            return True
    return False


def _names_a_needle(procedure: FhirView, record: PatientRecord) -> bool:
    """Whether the Procedure records the needle used: a Device, or a used item named as a needle."""
    for concept in procedure.usedCode or []:
        if "needle" in _concept_words(concept).lower():
            return True
    for reference in procedure.usedReference or []:
        target = record.resolve(reference, procedure)
        if is_resource(target, "Device") or reference.type == "Device" or (reference.reference or "").startswith(
                "Device/"):
            return True
    return False


def _points_at(reference: str | None, procedure_id: str) -> bool:
    if not reference:
        return False
    return reference == f"#{procedure_id}" or reference.rstrip("/").split("/")[-2:] == ["Procedure", procedure_id]


def _has_outcome_observation(procedure: FhirView, record: PatientRecord) -> bool:
    """An Observation (a pain score, a functional measure) recorded as part of this Procedure."""
    if not procedure.id:
        return False
    contained = [c for holder in (procedure, record.enclosing) for c in getattr(holder, "contained", None) or []]
    for observation in [*contained, *record.all_of("Observation")]:
        if is_resource(observation, "Observation") and any(
                _points_at(part.reference, procedure.id) for part in observation.partOf or []):
            return True
    return False


def _conditions_of_line(resource: FhirView | None, record: PatientRecord,
                        claim_diagnoses: Sequence[FhirView]) -> tuple[list[FhirView], set[tuple[str, str]]]:
    """The Conditions the line points at, and the (system, code) pairs of every indication it names."""
    conditions: list[FhirView] = []
    references: list[tuple[FhirView, Any]] = []
    concepts: list[FhirView] = []
    if resource is not None:
        references += [(ref, resource) for ref in resource.reasonReference or []]
        concepts += list(resource.reasonCode or [])
    for diagnosis in claim_diagnoses:
        if diagnosis.diagnosisReference is not None:
            references.append((diagnosis.diagnosisReference, None))
        if diagnosis.diagnosisCodeableConcept is not None:
            concepts.append(diagnosis.diagnosisCodeableConcept)
    for reference, container in references:
        target = record.resolve(reference, container)
        if is_resource(target, "Condition"):
            conditions.append(target)
            if target.code is not None:
                concepts.append(target.code)
    codes = {(canonical_system(c.system), c.code) for concept in concepts for c in codings_of(concept)
             if c.system and c.code}
    return conditions, codes


def _has_onset(condition: FhirView) -> bool:
    plain = _plain_has_onset(condition.json)
    return plain if plain is not NOT_PLAIN else _viewed_has_onset(condition)  # type: ignore[no-any-return]


def _viewed_has_onset(condition: FhirView) -> bool:
    onset = (condition.onsetDateTime, condition.onsetAge, condition.onsetPeriod, condition.onsetRange,
             condition.onsetString)
    return any(value is not None for value in onset)


def _plain_has_onset(json: dict[str, Any]) -> Any:
    """``_has_onset`` read straight from the JSON (each line asks of every Condition); ``NOT_PLAIN`` when a view
    would find an onset[x] value invalid, which only the views name."""
    found = False
    value = json.get("onsetDateTime")
    if value is not None:
        if json_date("datetime", value) is NOT_PLAIN:
            return NOT_PLAIN
        found = True
    for key in ("onsetAge", "onsetPeriod", "onsetRange"):  # read as views of their objects, unchecked inside
        value = json.get(key)
        if value is not None:
            if value.__class__ is not dict:
                return NOT_PLAIN
            found = True
    value = json.get("onsetString")
    if value is not None:
        if value.__class__ is not str:
            return NOT_PLAIN
        found = True
    return found


def _same_patient(condition: FhirView, subject: str | None) -> bool:
    theirs = condition.subject.reference if condition.subject else None
    return not (subject and theirs) or theirs.split("/")[-2:] == subject.split("/")[-2:]


def _symptom_duration_shown(resource: FhirView | None, record: PatientRecord,
                            claim_diagnoses: Sequence[FhirView]) -> bool:
    """Whether a Condition behind the line's indication says when it began (any onset[x])."""
    conditions, codes = _conditions_of_line(resource, record, claim_diagnoses)
    if any(_has_onset(condition) for condition in conditions):
        return True
    if not codes:
        return False
    # The indication may be a bare code; the patient's Condition with that code can still carry the onset.
    subject = resource.subject.reference if resource is not None and resource.subject else None
    return any(_same_patient(condition, subject) and codes & condition_codes
               for condition, condition_codes in record.derived(_conditions_with_onset))


def _conditions_with_onset(record: PatientRecord) -> list[tuple[FhirView, set[tuple[str, str]]]]:
    """The record's Conditions that say when they began, with their (system, code) pairs (each line asks)."""
    return [(condition, {(canonical_system(c.system), c.code) for c in codings_of(condition.code)
                         if c.system and c.code})
            for condition in record.all_of("Condition") if _has_onset(condition)]
