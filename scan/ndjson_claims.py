"""Checking the Claims of an indexed export, one patient at a time, the way ``claim-create`` checks one.

For each Claim the record holds what the hook's prefetch would have held: the patient's Conditions and
Coverages, the encounter of the claim, the earlier Procedures the history search asks for
(``services.HISTORY_CODES``) and the Procedures the claim bills, plus the Practitioners, roles,
Organizations and Locations they refer to. The context, rules and cards are the hook's own
(``claim_create_context``, ``invoke.decide``). The whole export is at hand, so a reference the hook's
prefetch would have left unresolved (a performer who is not the user) resolves here.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import orjson

from needlecheck.cds_hooks.invoke import decide, missing_claim_procedures
from needlecheck.cds_hooks.services import HISTORY_CODES
from needlecheck.mappings.cpt import CPT_SYSTEM
from needlecheck.plugin.context import RuleOptions
from needlecheck.plugin.fhir_input import claim_create_context, read_claim_sequences
from needlecheck.plugin.fhir_record import PatientRecord, without_invalid_resources
from needlecheck.plugin.fhir_view import InvalidFhir, view_of
from needlecheck.plugin.rule_settings import RuleSettings
from needlecheck.scan.ndjson_index import PATIENT_ELEMENT, reference_key
from needlecheck.scan.outcome import ClaimOutcome, claim_outcome
from needlecheck.scan.problems import InputProblem
from needlecheck.scan.results import Batch, batch_of
from needlecheck.scan.selection import DateRange, is_candidate

_HISTORY = frozenset(HISTORY_CODES)
# Shared resources a worker keeps parsed: an export's clinicians, roles, clinics and payers recur on every claim,
# but a health system's directory can hold tens of thousands, and a worker's memory must stay bounded.
SHARED_CACHE = 4096
# Encounter and Patient are read for the claim only; the rest of the compartment comes by patient.
_PATIENT_TYPES = frozenset({*PATIENT_ELEMENT, "Patient"})


@dataclass
class PatientResult:
    """The outcomes of one patient's Claims and the problems met on the way."""

    outcomes: list[ClaimOutcome]
    problems: list[InputProblem]
    skipped: int = 0  # Claims in range without a dry-needling line
    out_of_range: int = 0


class _Worker:
    """A read-only view of the index, opened once per worker process."""

    def __init__(self, index_path: Path, dates: DateRange, rule_options: RuleOptions,
                 rule_settings: RuleSettings) -> None:
        self.rule_options, self.rule_settings = rule_options, rule_settings
        self.connection = sqlite3.connect(f"file:{index_path}?mode=ro", uri=True, check_same_thread=False)
        self.files = dict(self.connection.execute("SELECT id, path FROM files"))
        self.dates = dates
        # Practitioners, roles, Organizations and Locations recur on every claim: each is read and parsed
        # once per worker.
        self.shared = lru_cache(maxsize=SHARED_CACHE)(self._shared)

    def _shared(self, key: str) -> tuple[tuple[str, dict[str, Any]], ...]:
        """``key``'s resource and every shared resource it leads to (roles of a Practitioner too)."""
        found: dict[str, dict[str, Any]] = {}
        pending = [key]
        while pending:
            current = pending.pop()
            if current in found or current.split("/", 1)[0] in _PATIENT_TYPES:
                continue
            rows = [*self.connection.execute("SELECT json FROM resources WHERE key = ? AND patient IS NULL "
                                             "ORDER BY rowid DESC LIMIT 1", (current,))]
            if current.startswith("Practitioner/"):
                rows += self.connection.execute("SELECT json FROM resources WHERE owner = ?", (current,))
            for (text,) in rows:
                resource = orjson.loads(text)
                found[f"{resource['resourceType']}/{resource['id']}"] = resource
                pending.extend(_references(resource))
            found.setdefault(current, None)  # type: ignore[arg-type]
        return tuple((k, v) for k, v in found.items() if v is not None)


_worker: _Worker | None = None


def start_worker(index_path: Path, dates: DateRange, rule_options: RuleOptions, rule_settings: RuleSettings) -> None:
    """Open the index in this process (a pool initializer, or the scan's own process with one worker)."""
    global _worker
    _worker = _Worker(index_path, dates, rule_options, rule_settings)


def check_patients(patients: list[str]) -> Batch:
    """Check every Claim of each patient, in order: the batch's totals and work list rows."""
    assert _worker is not None, "start_worker was not called in this process"
    results = [_check_patient(_worker, patient) for patient in patients]
    outcomes = [outcome for result in results for outcome in result.outcomes]
    skipped, out_of_range = sum(r.skipped for r in results), sum(r.out_of_range for r in results)
    return batch_of(outcomes, [p for r in results for p in r.problems], len(outcomes) + skipped, skipped,
                    out_of_range)


def _references(value: Any) -> list[str]:
    """``Type/id`` of every reference in ``value``, in document order (a loop, not recursive generators:
    every claim of a scan is walked whole)."""
    found: list[str] = []
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, dict):
            if isinstance(item.get("reference"), str) and (key := reference_key(item)):
                found.append(key)
            children = [child for child in item.values() if isinstance(child, dict | list)]
        elif isinstance(item, list):
            children = [child for child in item if isinstance(child, dict | list)]
        else:
            continue
        pending.extend(reversed(children))
    return found


def _cpt_codes(resource: dict[str, Any]) -> set[str]:
    code = resource.get("code")
    codings = code.get("coding") if isinstance(code, dict) else None
    return {c.get("code") for c in codings or [] if isinstance(c, dict) and c.get("system") == CPT_SYSTEM}


class _PatientResources:
    """One patient's resources as JSON by type, and what every one of the patient's claims reads, worked out
    once per patient: the earlier Procedures history asks for, and the shared resources the Coverages refer to."""

    def __init__(self) -> None:
        self.by_type: dict[str, dict[str, dict[str, Any]]] = {}
        self._history: frozenset[str] | None = None
        self._coverage_references: list[str] | None = None

    def history(self) -> frozenset[str]:
        """The keys of the Procedures with a code the hook's history search asks for."""
        if self._history is None:
            self._history = frozenset(key for key, procedure in self.by_type.get("Procedure", {}).items()
                                      if _cpt_codes(procedure) & _HISTORY)
        return self._history

    def coverage_references(self) -> list[str]:
        """Every reference of the patient's Coverages (their payers, mostly)."""
        if self._coverage_references is None:
            self._coverage_references = [key for coverage in self.by_type.get("Coverage", {}).values()
                                         for key in _references(coverage)]
        return self._coverage_references


def _check_patient(worker: _Worker, patient: str) -> PatientResult:
    resources = _PatientResources()
    by_type = resources.by_type
    claims: list[tuple[str, int, int]] = []
    for kind, key, text, file_id, line in worker.connection.execute(
            "SELECT type, key, json, file, line FROM resources WHERE patient = ? ORDER BY rowid", (patient,)):
        if kind == "Claim":
            claims.append((text, file_id, line))
        else:
            by_type.setdefault(kind, {})[key] = orjson.loads(text)
    result = PatientResult([], [])
    for text, file_id, line in claims:
        claim_json = orjson.loads(text)
        where = (worker.files.get(file_id), line)
        if not worker.dates.contains(claim_json.get("created")):
            result.out_of_range += 1
            continue
        if not is_candidate(claim_json):
            result.skipped += 1
            continue
        try:
            outcome = _check_claim(worker, patient, claim_json, resources, where, result.problems)
        except Exception as error:  # one odd claim must not end a scan of a million
            result.problems.append(InputProblem("claim-not-checked", *where,
                                                f"Claim/{claim_json.get('id')}: {type(error).__name__}: {error}"))
            outcome = ClaimOutcome(str(claim_json.get("id")), patient, checked=False)
        result.outcomes.append(outcome)
    return result


def _record_for(worker: _Worker, claim_json: dict[str, Any], patient: _PatientResources) -> PatientRecord:
    record = PatientRecord()
    by_type = patient.by_type
    for kind in ("Condition", "Coverage"):
        for key in by_type.get(kind, {}):
            record.add_json(by_type[kind][key])
    billed = {key for entry in claim_json.get("procedure") or [] if isinstance(entry, dict)
              for key in [reference_key(entry.get("procedureReference"))] if key}
    procedures = by_type.get("Procedure", {})
    history = patient.history()
    for key, procedure in procedures.items():
        if key in billed or key in history:
            record.add_json(procedure)
    # The hook reads the encounter of its context: the claim's first.
    encounters = [key for item in claim_json.get("item") or [] if isinstance(item, dict)
                  for key in (reference_key(e) for e in item.get("encounter") or []) if key]
    pending = [*_references(claim_json)]
    for key in encounters[:1]:
        found = by_type.get("Encounter", {}).get(key)
        if found is not None:
            pending.extend(_references(found))
            record.add_json(found)
    for key in billed:
        pending.extend(_references(procedures.get(key)))
    pending.extend(patient.coverage_references())
    # In first-seen order (not a set's): the record lists them in the same order in every process.
    for key in dict.fromkeys(pending):
        if key.split("/", 1)[0] not in _PATIENT_TYPES:
            for _, resource in worker.shared(key):
                record.add_json(resource)
    return record


def _check_claim(worker: _Worker, patient: str, claim_json: dict[str, Any],
                 resources: _PatientResources, where: tuple[str | None, int],
                 problems: list[InputProblem]) -> ClaimOutcome:
    claim_id = str(claim_json.get("id"))
    try:
        claim = view_of(claim_json, f"Claim/{claim_id}")
        read_claim_sequences(claim)
        record = _record_for(worker, claim_json, resources)
        missing = missing_claim_procedures(claim, record)
        if missing:
            problems.append(InputProblem("missing-procedures", *where,
                                         f"Claim/{claim_id} bills {', '.join(missing)}, which the input does not "
                                         "hold for this patient; not checked"))
            return ClaimOutcome(claim_id, patient, checked=False, has_dry_needling=True)
        evaluated_on = _created(claim_json) or dt.date.today()
        context = without_invalid_resources(record, lambda: claim_create_context(patient, claim, record, evaluated_on))
    except InvalidFhir as error:
        problems.append(InputProblem("invalid-claim", *where, f"Claim/{claim_id} is not a valid FHIR R4 Claim: "
                                                              f"{error}"))
        return ClaimOutcome(claim_id, patient, checked=False, has_dry_needling=True)
    hook_instance = f"scan:Claim/{claim_id}"
    # A scan hands no resource back to an EHR: the suggested code is reported without validating the whole
    # updated Claim with fhir.resources (which would cost more than the rules on every claim with a card).
    decision = decide(context, hook_instance, {f"Claim/{claim_id}": claim_json}, worker.rule_options,
                      worker.rule_settings, check_drafts=False)
    return claim_outcome(claim_id, context, decision, hook_instance)


def _created(claim_json: dict[str, Any]) -> dt.date | None:
    value = claim_json.get("created")
    try:
        return dt.date.fromisoformat(value[:10]) if isinstance(value, str) else None
    except ValueError:
        return None
