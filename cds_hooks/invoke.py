"""One hook call from request to response: validate, resolve prefetch, fetch what is missing, decide.

This is the path every request takes, for the HTTP service and for ``needlecheck check`` alike.
"""

from __future__ import annotations

import datetime as dt
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from functools import partial
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # only the type of a session: ``needlecheck check`` never imports requests (~90 ms)
    import requests

from needlecheck.cds_hooks.cards import cards_for, unchecked_card
from needlecheck.cds_hooks.crd_configuration import CallConfiguration, capped, parse_configuration, without_families_off
from needlecheck.cds_hooks.errors import ApiError
from needlecheck.cds_hooks.fhir_client import FhirClient, FhirLimits, FhirUnavailable
from needlecheck.cds_hooks.fhir_reads import Answer, CallReads
from needlecheck.cds_hooks.governance import Governance
from needlecheck.cds_hooks.hook_request import HookRequest, invalid_fhir_error, parse_hook_request
from needlecheck.cds_hooks.prefetch import KeyOutcome, KeyStatus, resolve_prefetch
from needlecheck.cds_hooks.services import ServiceDefinition
from needlecheck.cds_hooks.suppression import IssuedCard, suppressed_rule_ids
from needlecheck.plugin.context import BillingContext, RuleOptions
from needlecheck.plugin.engine import resolve, run_rules
from needlecheck.plugin.fhir_input import (
    claim_create_context,
    claim_procedure_references,
    is_about_patient,
    order_sign_context,
)
from needlecheck.plugin.fhir_parties import party_references
from needlecheck.plugin.fhir_record import PatientRecord, without_invalid_resources
from needlecheck.plugin.fhir_view import FhirView, InvalidFhir, is_resource, view_of
from needlecheck.plugin.findings import Finding
from needlecheck.plugin.rule_settings import RuleSettings, apply_rule_settings


@dataclass
class HookResult:
    """The response body and what the audit log and tests want to know about the call."""

    body: dict[str, Any]
    findings: list[Finding] = field(default_factory=list)
    prefetch: dict[str, KeyOutcome] = field(default_factory=dict)
    # One rule id per card repeat suppression held back (the audit record counts them).
    suppressed: tuple[str, ...] = ()
    # The cards shown, with hashed patient and finding keys (stored with the audit record).
    issued: tuple[IssuedCard, ...] = ()
    context: BillingContext | None = None
    unchecked: tuple[str, ...] = ()  # the checks the "not checked" card names


@dataclass
class Decision:
    """What the rules found for one billing context and the cards a hook call answers with."""

    findings: list[Finding]
    cards: list[dict[str, Any]]
    unchecked: tuple[str, ...] = ()


def decided_findings(context: BillingContext, options: RuleOptions, rule_settings: RuleSettings,
                     configuration: CallConfiguration) -> list[Finding]:
    """The rules' findings under the site's settings, one per root cause (precedence resolved last, so a
    switched-off rule or family cannot hide a finding it would have outranked)."""
    if context.options is not options and context.options != options:
        context = replace(context, options=options)
    findings = apply_rule_settings(run_rules(context), rule_settings)
    return resolve(without_families_off(findings, configuration))


def cards_of(findings: list[Finding], context: BillingContext, hook_instance: str,
             drafts: dict[str, dict[str, Any]], check_drafts: bool = True) -> Decision:
    """The cards of ``findings``; checks that could not run share one info card (a card per missing data set
    would bury the problems). ``check_drafts``: see ``cards.finding_card``."""
    if not findings and not context.missing_data:
        return Decision(findings, [])  # a clean call: no card, nothing unchecked
    cards = cards_for([f for f in findings if not f.unchecked], hook_instance, drafts, check_drafts)
    unchecked = (*context.missing_data, *dict.fromkeys(f.detail for f in findings if f.unchecked))
    if not (unchecked and context.dry_needling_lines):
        return Decision(findings, cards)
    cards.append(unchecked_card(hook_instance, unchecked))
    return Decision(findings, cards, unchecked)


def decide(context: BillingContext, hook_instance: str, drafts: dict[str, dict[str, Any]],
           options: RuleOptions | None = None, rule_settings: RuleSettings | None = None,
           check_drafts: bool = True) -> Decision:
    """Run the rules over ``context`` and render their cards, as every hook call does (without a request's
    CRD configuration or repeat suppression, which belong to a live call).

    Shared with ``needlecheck scan`` so a claim gets the same answer wherever it is checked.
    """
    findings = decided_findings(context, options or RuleOptions(), rule_settings or {}, CallConfiguration())
    return cards_of(findings, context, hook_instance, drafts, check_drafts)


def missing_claim_procedures(claim: FhirView, record: PatientRecord) -> list[str]:
    """The references of the Procedures the claim bills that the record cannot resolve."""
    return [ref.reference for ref in claim_procedure_references(claim)
            if ref.reference and not ref.reference.startswith("#") and record.resolve(ref, claim) is None]


def _record_from(outcomes: dict[str, KeyOutcome], request: HookRequest) -> PatientRecord:
    record = PatientRecord()
    for outcome in outcomes.values():
        if not outcome.key.checks:
            continue  # no rule reads this key yet
        for resource in outcome.resources:
            record.add_json(resource)
        if outcome.status is KeyStatus.FAILED:
            record.missing.append(f"{outcome.key.checks} ({outcome.problem})")
    for entry in request.draft_orders.entry if request.draft_orders else []:
        if entry.resource is not None:
            record.add(entry.resource)
    return record


def _resource_keys_in(prefetch: dict[str, Any]) -> set[str]:
    """``Type/id`` of every resource the client prefetched (alone or in a Bundle)."""
    keys = set()
    for value in prefetch.values():
        is_bundle = isinstance(value, dict) and value.get("resourceType") == "Bundle"
        entries = value.get("entry") if is_bundle else [{"resource": value}]
        resources = [e.get("resource") for e in entries if isinstance(e, dict)] if isinstance(entries, list) else []
        keys.update(f"{r.get('resourceType')}/{r.get('id')}" for r in resources if isinstance(r, dict))
    return keys


def _start_claim_procedure_reads(request: HookRequest, reads: CallReads | None) -> dict[str, Future[Answer]]:
    """Start reading the billed Procedures that neither the claim nor prefetch holds.

    They run alongside the prefetch searches: a slow history search must not use up the time budget the
    one read the claim cannot do without needs.
    """
    if request.claim is None or reads is None:
        return {}
    provided = _resource_keys_in(request.prefetch)
    wanted = [ref.reference for ref in claim_procedure_references(request.claim)
              if ref.reference and not ref.reference.startswith("#")
              and "/".join(ref.reference.rstrip("/").split("/")[-2:]) not in provided]
    return {reference: reads.ask(reference, required=True) for reference in dict.fromkeys(wanted)}


def _fetch_claim_procedures(request: HookRequest, record: PatientRecord, reads: CallReads | None,
                            started: dict[str, Future[Answer]]) -> None:
    """Fetch the Procedures the claim bills that neither the claim nor prefetch holds; 412 if impossible."""
    claim = request.claim
    assert claim is not None
    wanted = missing_claim_procedures(claim, record)
    if not wanted:
        return
    if reads is None:
        raise ApiError(412, f"the claim references {', '.join(wanted)}, which is neither contained, in prefetch, "
                            "nor obtainable without a FHIR server",
                       code="not-found", expression="context.claim.procedure")
    futures = {reference: started.get(reference) or reads.ask(reference, required=True) for reference in wanted}
    for reference, future in futures.items():
        try:
            found = future.result().document
        except FhirUnavailable as error:
            raise ApiError(412, f"the claim references {reference}, which the FHIR server did not return ({error})",
                           code="not-found", expression="context.claim.procedure") from error
        try:
            resource = view_of(found, reference)
            ours = is_resource(resource, "Procedure") and is_about_patient(resource, request.patient_id)
        except InvalidFhir as error:
            raise ApiError(412, f"the claim references {reference}, which the FHIR server did not return as a "
                                "valid Procedure", code="not-found", expression="context.claim.procedure") from error
        if not is_resource(resource, "Procedure"):
            raise ApiError(412, f"the claim references {reference}, which the FHIR server did not return as a "
                                "valid Procedure", code="not-found", expression="context.claim.procedure")
        if not ours:
            # A read by id is not filtered by patient: never decide one patient's claim on another's record.
            raise ApiError(412, f"the claim references {reference}, which is not a Procedure of patient "
                                f"{request.patient_id}", code="not-found", expression="context.claim.procedure")
        record.add_json(found)


def _roles_query(practitioner_id: str) -> str:
    # The same text as the practitionerRoles prefetch query, so the signer's roles are searched once.
    return (f"PractitionerRole?practitioner={practitioner_id}"
            "&_include=PractitionerRole:location&_include=PractitionerRole:organization")


def _party_queries(reference: str) -> list[str]:
    """What reading a party takes: the resource, and for a Practitioner the roles that say what they do."""
    kind, _, ident = reference.partition("/")
    return [reference, _roles_query(ident)] if kind == "Practitioner" else [reference]


def _read_parties(references: list[str], record: PatientRecord, reads: CallReads) -> list[FhirView]:
    """Read the parties from the server (a Practitioner with its roles); what cannot be read stays unread."""
    futures = [reads.ask(query) for reference in references for query in _party_queries(reference)]
    reads.send()
    read: list[FhirView] = []
    for future in futures:
        try:
            found = future.result().resources
        except FhirUnavailable:
            continue  # the rule that needed it says it could not check
        for resource in found:
            if isinstance(resource, dict) and resource.get("resourceType") != "OperationOutcome" \
                    and (view := record.add_json(resource)) is not None:
                read.append(view)
    return read


def _valid_party_references(read: list[FhirView], record: PatientRecord) -> list[str]:
    return party_references([view for view in read if view.path not in record.invalid], record)


def _wanted_parties(drafts: list[Any], record: PatientRecord, signer: str | None) -> list[str]:
    wanted = party_references(drafts, record)
    if signer and signer.split("/")[0] in ("Practitioner", "PractitionerRole") \
            and record.resolve(signer) is None:
        wanted.append(signer)
    return wanted


def _fetch_parties(drafts: list[Any], record: PatientRecord, reads: CallReads | None,
                   signer: str | None = None) -> None:
    """Read the performers and places the drafts name that neither they nor prefetch hold (issue 9, finding 10).

    No prefetch template can name an order's own performer or location, so without this the scope of
    practice and the Medicare performer rules would silently skip them. Two rounds: the parties the drafts
    name, then the roles' practitioners, locations and organizations those name. Most of the first round was
    sent beside the prefetch searches (``_start_party_reads``): its answers are in already.
    """
    if reads is None:
        return
    wanted = _wanted_parties(drafts, record, signer)
    for _ in range(2):
        if not wanted:
            return
        read = _read_parties(list(dict.fromkeys(wanted)), record, reads)
        wanted = without_invalid_resources(record, partial(_valid_party_references, read, record))


def _start_party_reads(drafts: list[Any], record: PatientRecord, reads: CallReads, signer: str | None) -> None:
    """Ask, beside the prefetch searches, for the parties the drafts name that ``record`` (what the client
    sent) does not hold: the order's own performer and location, which no prefetch template can name.

    A party a prefetch search may also bring (a Location the signer's role includes) is asked all the same:
    waiting for that search would cost a round whenever it does not bring it. The signer's own Practitioner
    and roles are the ``practitioner`` and ``practitionerRoles`` queries themselves, asked once.
    """
    for reference in dict.fromkeys(_wanted_parties(drafts, record, signer)):
        if reference not in reads.held:
            for query in _party_queries(reference):
                reads.ask(query)


def _billed_parties_then(request: HookRequest, record: PatientRecord, reads: CallReads,
                         started: dict[str, Future[Answer]]) -> None:
    """When a billed Procedure is read, send the reads of its performers and location at once."""
    def start(reference: str, future: Future[Answer]) -> None:
        if future.exception() is not None:
            return
        try:
            procedure = view_of(future.result().document, reference)
        except InvalidFhir:
            return  # _fetch_claim_procedures answers 412 for it
        if is_resource(procedure, "Procedure") and is_about_patient(procedure, request.patient_id):
            _start_party_reads([procedure], record, reads, None)

    for reference in started:
        reads.ask(reference, partial(start, reference))


_DEFAULT_OPTIONS = RuleOptions()
_NO_GOVERNANCE = Governance()  # every rule as it is, no repeat suppression (both frozen: shared by every call)


def run_hook(service: ServiceDefinition, body: Any, limits: FhirLimits, pool: ThreadPoolExecutor,
             session: requests.Session | None = None, today: dt.date | None = None,
             options: RuleOptions | None = None, governance: Governance | None = None) -> HookResult:
    """Answer one call of ``service``; raises ApiError for 400 (bad request) and 412 (required data).

    ``options`` are the administrator's rule options (``Settings.rule_options``: ``[documentation]`` in the
    config file); ``governance`` holds the site's rule settings and repeat suppression (none: every rule as
    it is).
    """
    request = parse_hook_request(body, service)
    configuration = parse_configuration(body)
    client = None
    if request.fhir_server:
        client = FhirClient(request.fhir_server, request.access_token, limits, session,
                            deadline=time.monotonic() + limits.time_budget_seconds)
    try:
        return _decide(service, request, body, client, pool, today or dt.date.today(), options or _DEFAULT_OPTIONS,
                       governance or _NO_GOVERNANCE, configuration)
    except InvalidFhir as error:
        raise invalid_fhir_error(error) from error
    finally:
        if client is not None:
            client.close()


def _decide(service: ServiceDefinition, request: HookRequest, body: dict[str, Any], client: FhirClient | None,
            pool: ThreadPoolExecutor, evaluated_on: dt.date, options: RuleOptions, governance: Governance,
            configuration: CallConfiguration) -> HookResult:
    reads = CallReads(client, pool) if client is not None else None
    started = _start_claim_procedure_reads(request, reads)
    outcomes = resolve_prefetch(service.prefetch, request.prefetch, request.context, client, pool, reads)
    if reads is not None:
        if reads.pending():  # with everything prefetched, the parties are all there is to read
            _start_early_reads(request, outcomes, reads, started)
        reads.run()
    record = _record_from(outcomes, request)
    drafts: dict[str, dict[str, Any]] | None = None
    if (claim := request.claim) is not None:
        _fetch_claim_procedures(request, record, reads, started)
        billed = [record.resolve(ref, claim) for ref in claim_procedure_references(claim)]
        _fetch_parties([claim, *(p for p in billed if p is not None)], record, reads)
        context = without_invalid_resources(
            record, lambda: claim_create_context(request.patient_id, claim, record, evaluated_on))
        drafts = {f"Claim/{claim.id}" if claim.id else "Claim": body["context"]["claim"]}
    else:
        draft_orders = request.draft_orders
        assert draft_orders is not None
        signer = request.user_id
        orders = [entry.resource for entry in draft_orders.entry if entry.resource is not None]
        _fetch_parties(orders, record, reads, signer)
        context = without_invalid_resources(
            record, lambda: order_sign_context(request.patient_id, draft_orders, record, evaluated_on, signer))
    findings = decided_findings(context, options, governance.rule_settings, configuration)
    suppressed: list[Finding] = []
    if governance.suppression is not None:
        findings, suppressed, keys = governance.suppression.split(findings, context, dt.datetime.now(dt.UTC))
    if drafts is None:  # the orders by reference, which only a card's suggestion reads
        drafts = _draft_orders_by_reference(body["context"]["draftOrders"]) if findings else {}
    decision = cards_of(findings, context, request.hook_instance, drafts)
    cards = capped(decision.cards, configuration.max_cards)
    issued = () if governance.suppression is None else governance.suppression.issued_cards(
        request.hook_instance, request.patient_id, findings, keys, cards)
    return HookResult({"cards": cards}, findings, outcomes, suppressed_rule_ids(suppressed), issued, context,
                      decision.unchecked)


def _start_early_reads(request: HookRequest, outcomes: dict[str, KeyOutcome], reads: CallReads,
                       started: dict[str, Future[Answer]]) -> None:
    """Send, beside the prefetch searches, the party reads the drafts already name."""
    provided = _record_from({name: outcome for name, outcome in outcomes.items()
                             if outcome.status is KeyStatus.PROVIDED}, request)
    if (claim := request.claim) is not None:
        contained = [provided.resolve(ref, claim) for ref in claim_procedure_references(claim)]
        _start_party_reads([claim, *(p for p in contained if p is not None)], provided, reads, None)
        _billed_parties_then(request, provided, reads, started)
    elif request.draft_orders is not None:
        orders = [entry.resource for entry in request.draft_orders.entry if entry.resource is not None]
        _start_party_reads(orders, provided, reads, request.user_id)


def _draft_orders_by_reference(bundle: dict[str, Any]) -> dict[str, dict[str, Any]]:
    drafts: dict[str, dict[str, Any]] = {}
    for index, entry in enumerate(bundle.get("entry") or [], start=1):
        resource = entry.get("resource") or {}
        kind = resource.get("resourceType", "")
        reference = f"{kind}/{resource['id']}" if resource.get("id") else f"{kind} in draftOrders entry {index}"
        drafts[reference] = resource
    return drafts
