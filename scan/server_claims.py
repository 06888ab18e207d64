"""Scanning the Claims of a FHIR server: search them by ``created``, then check each as a ``claim-create`` call.

Each Claim becomes the hook call an EHR would have made, with no prefetch and the server as ``fhirServer``:
``run_hook`` then reads the patient's coverage, conditions, encounter, practitioner and earlier Procedures,
and the Procedures the claim bills, exactly as the hook's FHIR fallback does, under the same limits.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlencode

import requests

from needlecheck.cds_hooks.errors import ApiError
from needlecheck.cds_hooks.fhir_client import FhirClient, FhirLimits, matches, next_link
from needlecheck.cds_hooks.governance import Governance
from needlecheck.cds_hooks.invoke import Decision, run_hook
from needlecheck.cds_hooks.services import CLAIM_CREATE
from needlecheck.plugin.context import RuleOptions
from needlecheck.plugin.rule_settings import RuleSettings
from needlecheck.scan.ndjson_claims import PatientResult
from needlecheck.scan.ndjson_index import reference_key
from needlecheck.scan.outcome import ClaimOutcome, claim_outcome
from needlecheck.scan.problems import InputProblem
from needlecheck.scan.results import Batch, batch_of
from needlecheck.scan.selection import DateRange, is_candidate

PAGE_SIZE = 100


def claim_search(dates: DateRange) -> str:
    """The Claim search of the date range (``created`` both ends inclusive)."""
    parameters = []
    if dates.since:
        parameters.append(("created", f"ge{dates.since.isoformat()}"))
    if dates.until:
        parameters.append(("created", f"le{dates.until.isoformat()}"))
    parameters.append(("_count", str(PAGE_SIZE)))
    return "Claim?" + urlencode(parameters)


def claim_pages(base_url: str, token: str | None, limits: FhirLimits, dates: DateRange,
                session: requests.Session) -> Iterator[list[dict[str, Any]]]:
    """The Claims of each page of the search, following ``next`` links; raises FhirUnavailable."""
    url: str | None = claim_search(dates)
    while url is not None:
        # Each page gets the time budget of a hook call; the search as a whole may take as long as it needs.
        page = FhirClient(base_url, token, limits, session).get(url)
        yield [r for r in matches(page) if r.get("resourceType") == "Claim"]
        url = next_link(page) if page.get("resourceType") == "Bundle" else None


class _ServerWorker:
    def __init__(self, base_url: str, token: str | None, limits: FhirLimits, dates: DateRange,
                 rule_options: RuleOptions, rule_settings: RuleSettings) -> None:
        self.base_url, self.token, self.limits, self.dates = base_url, token, limits, dates
        self.rule_options, self.governance = rule_options, Governance(rule_settings)
        self.session = requests.Session()
        self.pool = ThreadPoolExecutor(max_workers=8)


_worker: _ServerWorker | None = None


def start_server_worker(base_url: str, token: str | None, limits: FhirLimits, dates: DateRange,
                        rule_options: RuleOptions, rule_settings: RuleSettings) -> None:
    """Prepare this process to check Claims against the server (a pool initializer)."""
    global _worker
    _worker = _ServerWorker(base_url, token, limits, dates, rule_options, rule_settings)


def check_server_claims(claims: list[dict[str, Any]]) -> Batch:
    """Check a page of Claims read from the server: the page's totals and work list rows."""
    assert _worker is not None, "start_server_worker was not called in this process"
    results = [_check(_worker, claim) for claim in claims]
    out_of_range = sum(r.out_of_range for r in results)
    return batch_of([o for r in results for o in r.outcomes], [p for r in results for p in r.problems],
                    len(claims) - out_of_range, sum(r.skipped for r in results), out_of_range)


def hook_body(claim: dict[str, Any], patient_id: str, base_url: str, token: str | None) -> dict[str, Any]:
    """The ``claim-create`` call an EHR would make for ``claim``: its enterer as the user, its first encounter."""
    user = reference_key(claim.get("enterer")) or reference_key(claim.get("provider")) or "unknown"
    context: dict[str, Any] = {"userId": user, "patientId": patient_id, "claim": claim}
    encounter = next((key for item in claim.get("item") or [] if isinstance(item, dict)
                      for key in (reference_key(e) for e in item.get("encounter") or []) if key), None)
    if encounter and encounter.startswith("Encounter/"):
        context["encounterId"] = encounter.split("/", 1)[1]
    body: dict[str, Any] = {"hook": CLAIM_CREATE.hook, "hookInstance": f"scan:Claim/{claim.get('id')}",
                            "fhirServer": base_url, "context": context}
    if token:
        body["fhirAuthorization"] = {"access_token": token, "token_type": "Bearer"}
    return body


def _check(worker: _ServerWorker, claim: dict[str, Any]) -> PatientResult:
    claim_id = str(claim.get("id"))
    where = f"{worker.base_url.rstrip('/')}/Claim/{claim_id}"
    result = PatientResult([], [])
    if not worker.dates.contains(claim.get("created")):
        result.out_of_range = 1
        return result
    if not is_candidate(claim):
        result.skipped = 1
        return result
    patient = reference_key(claim.get("patient"))
    if not patient or not patient.startswith("Patient/"):
        result.problems.append(InputProblem("claim-without-patient", where, None,
                                            f"Claim/{claim_id} names no Patient in Claim.patient; skipped"))
        return result
    patient_id = patient.split("/", 1)[1]
    body = hook_body(claim, patient_id, worker.base_url, worker.token)
    created = claim.get("created")
    try:
        today = dt.date.fromisoformat(created[:10]) if isinstance(created, str) else None
    except ValueError:
        today = None
    try:
        hook = run_hook(CLAIM_CREATE, body, worker.limits, worker.pool, worker.session, today=today,
                        options=worker.rule_options, governance=worker.governance)
    except ApiError as error:
        kind = "missing-procedures" if error.status == 412 else "invalid-claim"
        result.problems.append(InputProblem(kind, where, None, f"Claim/{claim_id}: {error.message}; not checked"))
        result.outcomes.append(ClaimOutcome(claim_id, patient_id, checked=False, has_dry_needling=True))
        return result
    assert hook.context is not None
    decision = Decision(hook.findings, hook.body["cards"], hook.unchecked)
    result.outcomes.append(claim_outcome(claim_id, hook.context, decision, body["hookInstance"]))
    return result
