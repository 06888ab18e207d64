"""One hook call from request to response: validate, resolve prefetch, fetch what is missing, decide.

This is the path every request takes, for the HTTP service and for ``needlecheck check`` alike.
"""

from __future__ import annotations

import datetime as dt
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import requests
from fhir.resources.R4B.claim import Claim
from fhir.resources.R4B.procedure import Procedure

from needlecheck.cds_hooks.cards import cards_for, unchecked_card
from needlecheck.cds_hooks.errors import ApiError
from needlecheck.cds_hooks.fhir_client import FhirClient, FhirLimits, FhirUnavailable
from needlecheck.cds_hooks.hook_request import HookRequest, parse_hook_request
from needlecheck.cds_hooks.prefetch import KeyOutcome, KeyStatus, resolve_prefetch
from needlecheck.cds_hooks.services import ServiceDefinition
from needlecheck.plugin.context import BillingContext
from needlecheck.plugin.engine import evaluate
from needlecheck.plugin.fhir_input import (
    claim_create_context,
    claim_procedure_references,
    is_about_patient,
    order_sign_context,
)
from needlecheck.plugin.fhir_record import PatientRecord, parse_resource
from needlecheck.plugin.findings import Finding


@dataclass
class HookResult:
    """The response body and what the audit log and tests want to know about the call."""

    body: dict[str, Any]
    findings: list[Finding] = field(default_factory=list)
    prefetch: dict[str, KeyOutcome] = field(default_factory=dict)
    context: BillingContext | None = None
    unchecked: tuple[str, ...] = ()  # the checks the "not checked" card names


@dataclass
class Decision:
    """What the rules found for one billing context and the cards a hook call answers with."""

    findings: list[Finding]
    cards: list[dict[str, Any]]
    unchecked: tuple[str, ...] = ()


def decide(context: BillingContext, hook_instance: str, drafts: dict[str, dict[str, Any]]) -> Decision:
    """Run the rules over ``context`` and render their cards, as every hook call does.

    Shared by the hooks and ``needlecheck scan`` so a claim gets the same answer wherever it is checked.
    """
    findings = evaluate(context)
    cards = cards_for([f for f in findings if not f.unchecked], hook_instance, drafts)
    # Checks that could not run share one info card: a card per missing data set would bury the problems.
    unchecked = (*context.missing_data, *dict.fromkeys(f.detail for f in findings if f.unchecked))
    if not (unchecked and context.dry_needling_lines):
        return Decision(findings, cards)
    cards.append(unchecked_card(hook_instance, unchecked))
    return Decision(findings, cards, unchecked)


def missing_claim_procedures(claim: Claim, record: PatientRecord) -> list[str]:
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
    for entry in (request.draft_orders.entry or []) if request.draft_orders else []:
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


def _start_claim_procedure_reads(request: HookRequest, client: FhirClient | None,
                                 pool: ThreadPoolExecutor) -> dict[str, Future[Any]]:
    """Start reading the billed Procedures that neither the claim nor prefetch holds.

    They run alongside the prefetch searches: a slow history search must not use up the time budget the
    one read the claim cannot do without needs.
    """
    if request.claim is None or client is None:
        return {}
    provided = _resource_keys_in(request.prefetch)
    wanted = [ref.reference for ref in claim_procedure_references(request.claim)
              if ref.reference and not ref.reference.startswith("#")
              and "/".join(ref.reference.rstrip("/").split("/")[-2:]) not in provided]
    return {reference: pool.submit(client.get, reference) for reference in dict.fromkeys(wanted)}


def _fetch_claim_procedures(request: HookRequest, record: PatientRecord, client: FhirClient | None,
                            pool: ThreadPoolExecutor, started: dict[str, Future[Any]]) -> None:
    """Fetch the Procedures the claim bills that neither the claim nor prefetch holds; 412 if impossible."""
    claim = request.claim
    assert claim is not None
    wanted = missing_claim_procedures(claim, record)
    if not wanted:
        return
    if client is None:
        raise ApiError(412, f"the claim references {', '.join(wanted)}, which is neither contained, in prefetch, "
                            "nor obtainable without a FHIR server",
                       code="not-found", expression="context.claim.procedure")
    futures = {reference: started.get(reference) or pool.submit(client.get, reference) for reference in wanted}
    for reference, future in futures.items():
        try:
            resource = parse_resource(future.result())
        except FhirUnavailable as error:
            raise ApiError(412, f"the claim references {reference}, which the FHIR server did not return ({error})",
                           code="not-found", expression="context.claim.procedure") from error
        if not isinstance(resource, Procedure):
            raise ApiError(412, f"the claim references {reference}, which the FHIR server did not return as a "
                                "valid Procedure", code="not-found", expression="context.claim.procedure")
        if not is_about_patient(resource, request.patient_id):
            # A read by id is not filtered by patient: never decide one patient's claim on another's record.
            raise ApiError(412, f"the claim references {reference}, which is not a Procedure of patient "
                                f"{request.patient_id}", code="not-found", expression="context.claim.procedure")
        record.add(resource)


def run_hook(service: ServiceDefinition, body: Any, limits: FhirLimits, pool: ThreadPoolExecutor,
             session: requests.Session | None = None, today: dt.date | None = None) -> HookResult:
    """Answer one call of ``service``; raises ApiError for 400 (bad request) and 412 (required data)."""
    request = parse_hook_request(body, service)
    client = None
    if request.fhir_server:
        client = FhirClient(request.fhir_server, request.access_token, limits, session,
                            deadline=time.monotonic() + limits.time_budget_seconds)
    try:
        return _decide(service, request, body, client, pool, today or dt.date.today())
    finally:
        if client is not None:
            client.close()


def _decide(service: ServiceDefinition, request: HookRequest, body: dict[str, Any], client: FhirClient | None,
            pool: ThreadPoolExecutor, evaluated_on: dt.date) -> HookResult:
    started = _start_claim_procedure_reads(request, client, pool)
    outcomes = resolve_prefetch(service.prefetch, request.prefetch, request.context, client, pool)
    record = _record_from(outcomes, request)
    if request.claim is not None:
        _fetch_claim_procedures(request, record, client, pool, started)
        context = claim_create_context(request.patient_id, request.claim, record, evaluated_on)
        drafts = {f"Claim/{request.claim.id}" if request.claim.id else "Claim": body["context"]["claim"]}
    else:
        assert request.draft_orders is not None
        signer = request.context.get("userId")
        context = order_sign_context(request.patient_id, request.draft_orders, record, evaluated_on,
                                     signer if isinstance(signer, str) else None)
        drafts = _draft_orders_by_reference(body["context"]["draftOrders"])
    decision = decide(context, request.hook_instance, drafts)
    return HookResult({"cards": decision.cards}, decision.findings, outcomes, context, decision.unchecked)


def _draft_orders_by_reference(bundle: dict[str, Any]) -> dict[str, dict[str, Any]]:
    drafts: dict[str, dict[str, Any]] = {}
    for index, entry in enumerate(bundle.get("entry") or [], start=1):
        resource = entry.get("resource") or {}
        kind = resource.get("resourceType", "")
        reference = f"{kind}/{resource['id']}" if resource.get("id") else f"{kind} in draftOrders entry {index}"
        drafts[reference] = resource
    return drafts
