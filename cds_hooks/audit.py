"""The audit record of every hook call (CRD ``found-37``): who called which service, what fired, how long it took.

A record holds identifiers and figures only, never PHI or secrets: no patient id, no resource content, no
FHIR access token, no JWT, no error message (messages may quote the request). What a client sent is kept
only where it is an identifier of the call itself (``hookInstance``) and looks like one.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from functools import partial
from typing import Any, NamedTuple

import requests
from flask import Flask, Response, g
from requests.adapters import HTTPAdapter

from needlecheck.cds_hooks.cards import RULE_EXTENSION
from needlecheck.cds_hooks.client_auth import AuthenticatedClient
from needlecheck.cds_hooks.fhir_pool import worker_adapter
from needlecheck.cds_hooks.invoke import HookResult
from needlecheck.cds_hooks.prefetch import KeyStatus
from needlecheck.cds_hooks.services import SERVICES
from needlecheck.cds_hooks.suppression import IssuedCard

log = logging.getLogger("needlecheck")

# Identifiers a client chose are kept only if they look like identifiers; anything else becomes None.
_IDENTIFIER = re.compile(r"[A-Za-z0-9._:\-]{1,128}")
_EXPRESSION = re.compile(r"[A-Za-z0-9_.\[\]]{1,200}")

ANONYMOUS_CLIENT = "anonymous"
_STARTED = "needlecheck.started"


@dataclass(frozen=True)
class AuditRecord:
    """One service invocation, as the audit log keeps it."""

    recorded_at: dt.datetime
    service_id: str
    hook: str | None
    hook_instance: str | None
    client_id: str
    http_status: int
    problem: str | None = None
    rule_ids: tuple[str, ...] = ()
    card_uuids: tuple[str, ...] = ()
    suggestion_uuids: tuple[str, ...] = ()
    total_ms: float | None = None
    fhir_ms: float | None = None
    fhir_requests: int | None = None
    # Alert governance: one rule id per card repeat suppression held back; prefetch keys the client
    # satisfied (a resource, a Bundle or null) out of those the call could use.
    suppressed_rule_ids: tuple[str, ...] = ()
    prefetch_provided: int | None = None
    prefetch_keys: int | None = None
    # The cards shown, with hashed patient and finding keys: stored in ``card_issued``, in the same transaction.
    issued_cards: tuple[IssuedCard, ...] = field(default=(), repr=False, compare=False)

    @classmethod
    def of(cls, **values: Any) -> AuditRecord:
        """``AuditRecord(**values)`` when ``values`` names every field (else that call itself), made without the
        frozen dataclass's ``__init__``: it sets each field through ``object.__setattr__``, ~28k instructions a
        record, for every call the service answers; this is a fraction of that. Equal, hashed and immutable
        like any other record (tests/test_audit_rule_ids.py holds the two to the same record)."""
        if values.keys() != _AUDIT_RECORD_FIELDS:
            return cls(**values)
        record = object.__new__(cls)
        record.__dict__.update(values)
        return record

    def as_json(self) -> dict[str, Any]:
        """The record as a JSON object (``needlecheck audit`` prints these)."""
        return {
            "recordedAt": self.recorded_at.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace(
                "+00:00", "Z"),
            "serviceId": self.service_id, "hook": self.hook, "hookInstance": self.hook_instance,
            "client": self.client_id, "httpStatus": self.http_status, "problem": self.problem,
            "ruleIds": list(self.rule_ids), "cardUuids": list(self.card_uuids),
            "suggestionUuids": list(self.suggestion_uuids), "totalMs": self.total_ms, "fhirMs": self.fhir_ms,
            "fhirRequests": self.fhir_requests, "suppressedCards": len(self.suppressed_rule_ids),
            "suppressedRuleIds": list(self.suppressed_rule_ids), "prefetchProvided": self.prefetch_provided,
            "prefetchKeys": self.prefetch_keys,
        }


_AUDIT_RECORD_FIELDS = frozenset(item.name for item in fields(AuditRecord))


def safe_identifier(value: Any) -> str | None:
    """``value`` if it is a short identifier-like string, else None (so free text never reaches the log)."""
    return value if isinstance(value, str) and _IDENTIFIER.fullmatch(value) else None


def card_rule_ids(body: dict[str, Any] | None) -> tuple[str, ...]:
    """The rules whose findings became cards of a cards response, sorted, each once.

    Read from the cards themselves (their ``org.needlecheck.rule-id`` extension), not from the findings: a
    rule that could not run for want of its data set, or whose finding another card made redundant, did not
    fire, and the one "Not checked" card names no rule.
    """
    rule_ids: set[str] = set()
    for card in (body or {}).get("cards") or []:
        value = (card.get("extension") or {}).get(RULE_EXTENSION) if isinstance(card, dict) else None
        values = value if isinstance(value, list) else [value]
        rule_ids.update(item for item in values if isinstance(item, str))
    return tuple(sorted(rule_ids))


def cards_identifiers(body: dict[str, Any] | None) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The card uuids and suggestion uuids of a cards response (what feedback and disputes refer to)."""
    card_uuids: list[str] = []
    suggestion_uuids: list[str] = []
    for card in (body or {}).get("cards") or []:
        if isinstance(card.get("uuid"), str):
            card_uuids.append(card["uuid"])
        suggestion_uuids.extend(s["uuid"] for s in card.get("suggestions") or [] if isinstance(s.get("uuid"), str))
    return tuple(card_uuids), tuple(suggestion_uuids)


def problem_of(outcome: Any) -> str | None:
    """``code`` or ``code@expression`` of an OperationOutcome's first issue: the kind of failure, no message."""
    if not isinstance(outcome, dict) or outcome.get("resourceType") != "OperationOutcome":
        return None
    issues = outcome.get("issue") or [{}]
    code = issues[0].get("code") if isinstance(issues[0], dict) else None
    if not isinstance(code, str):
        return None
    expressions = issues[0].get("expression") or []
    where = expressions[0] if expressions and isinstance(expressions[0], str) else None
    return f"{code}@{where}" if where and _EXPRESSION.fullmatch(where) else code


class TimedFhirSession(requests.Session):
    """A hook call's ``requests`` session: it measures how long the call waited for its FHIR server.

    Queries run in parallel, so the figure is the wall time during which at least one request was open
    (from sending it until its response was closed), not the sum of the requests' times. The connections are
    the worker's (``fhir_pool.worker_adapter``, or ``adapter``), kept open for the next call; the cookie jar
    and the timing are the call's own.
    """

    def __init__(self, adapter: HTTPAdapter | None = None) -> None:
        super().__init__()
        shared = adapter or worker_adapter()
        self.adapters.clear()  # the two Session makes for itself would each open connections of their own
        self.mount("https://", shared)
        self.mount("http://", shared)
        self.trust_env = False  # FhirClient passes what the environment says (fhir_pool.environment_settings)
        self._lock = threading.Lock()
        self._intervals: list[tuple[float, float]] = []

    def close(self) -> None:
        """End the call's use of the session; the shared connections stay open for the next call."""
        self.cookies.clear()

    def request(self, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        """Send a request; its interval ends when the response is closed (the body has then been read)."""
        started = time.perf_counter()
        try:
            response = super().request(*args, **kwargs)
        except BaseException:
            self._add(started)
            raise
        close = response.close

        def close_and_time() -> None:
            close()
            self._add(started)

        response.close = close_and_time  # type: ignore[method-assign]
        return response

    def _add(self, started: float) -> None:
        with self._lock:
            self._intervals.append((started, time.perf_counter()))

    @property
    def request_count(self) -> int:
        """How many requests were sent."""
        with self._lock:
            return len(self._intervals)

    @property
    def waited_ms(self) -> float:
        """Milliseconds during which at least one request was open."""
        with self._lock:
            return open_seconds(self._intervals) * 1000


def open_seconds(intervals: list[tuple[float, float]]) -> float:
    """The length of the union of ``(start, end)`` intervals: overlapping time counts once."""
    total, end = 0.0, float("-inf")
    for start, stop in sorted(intervals):
        if stop > end:
            total += stop - max(start, end)
            end = stop
    return total


@dataclass
class InvocationTrace:
    """What the HTTP layer learns about one invocation while answering it (kept on ``flask.g``).

    ``fhir_session`` is None when the request names no FHIR server: nothing can be fetched, and a
    ``requests.Session`` costs about 0.1 ms to build, on every call of a busy worker.
    """

    hook_instance: str | None = None
    fhir_session: TimedFhirSession | None = None
    result: HookResult | None = None

    @property
    def fhir_requests(self) -> int:
        """How many FHIR requests the call sent."""
        return self.fhir_session.request_count if self.fhir_session is not None else 0

    @property
    def fhir_waited_ms(self) -> float:
        """Milliseconds the call waited for its FHIR server (see ``TimedFhirSession.waited_ms``)."""
        return self.fhir_session.waited_ms if self.fhir_session is not None else 0.0


def trace_invocation(body: Any) -> InvocationTrace:
    """Start the trace of the invocation whose request is ``body``; the audit record is written from it."""
    if not isinstance(body, dict):
        trace = InvocationTrace()
    else:
        session = TimedFhirSession() if "fhirServer" in body else None
        trace = InvocationTrace(safe_identifier(body.get("hookInstance")), session)
    g.needlecheck_invocation = trace
    return trace


def elapsed_ms(environ: dict[str, Any]) -> float | None:
    """Milliseconds since the request of ``environ`` reached the app (None outside ``time_requests``)."""
    started = environ.get(_STARTED)
    return round((time.perf_counter() - started) * 1000, 3) if isinstance(started, float) else None


def caller_id(caller: AuthenticatedClient | None) -> str:
    """The ``iss`` of the client whose JWT was verified; ``anonymous`` in open mode or when it was refused."""
    return caller.client.iss if caller is not None else ANONYMOUS_CLIENT


def call_facts(response: Response, service_id: Any, total_ms: float | None, caller: AuthenticatedClient | None,
               trace: InvocationTrace | None, rule_ids: tuple[str, ...]) -> Callable[[], AuditRecord]:
    """What the record of the invocation ``response`` answers is made from (the facts of the request the
    after-request hook read once for the audit log, the metrics and the access line, and ``rule_ids``, the
    ``card_rule_ids`` of its answer); calling the result makes the record, in any thread.

    Only identifiers and figures are kept, never the call's ``HookResult``: queued for the audit writer, that
    would keep the whole call (its billing context, the request's resources) alive until the writer's batch,
    and a busy worker's garbage collector walked the dozens of calls queued at a time on every collection.
    """
    problem = None
    if response.status_code >= 400:
        problem = problem_of(response.get_json(silent=True)) or f"http-{response.status_code}"
    return partial(make_audit_record, time.time(), service_id, response.status_code, problem, caller_id(caller),
                   total_ms, traced_call(trace, rule_ids))


class TracedCall(NamedTuple):
    """The audit record's facts from an invocation's trace: identifiers and figures only.

    A named tuple, made in the request's thread: as immutable as a frozen dataclass, at a fraction of the cost
    (a frozen dataclass sets each field through ``object.__setattr__``, ~1.5k instructions a field).
    """

    hook_instance: str | None
    fhir_ms: float | None
    fhir_requests: int | None
    rule_ids: tuple[str, ...] = ()
    card_uuids: tuple[str, ...] = ()
    suggestion_uuids: tuple[str, ...] = ()
    suppressed_rule_ids: tuple[str, ...] = ()
    issued_cards: tuple[IssuedCard, ...] = ()
    prefetch_provided: int | None = None
    prefetch_keys: int | None = None


_UNTRACED = TracedCall(None, None, None)


def traced_call(trace: InvocationTrace | None, rule_ids: tuple[str, ...]) -> TracedCall | None:
    """The facts of ``trace`` the audit record keeps (None without a trace: the request was not a JSON object);
    ``rule_ids``: the ``card_rule_ids`` of the call's answer."""
    if trace is None:
        return None
    waited_ms, requests_sent = round(trace.fhir_waited_ms, 3), trace.fhir_requests
    result = trace.result
    if result is None:
        return TracedCall(trace.hook_instance, waited_ms, requests_sent)
    card_uuids, suggestion_uuids = cards_identifiers(result.body)
    return TracedCall(trace.hook_instance, waited_ms, requests_sent, rule_ids, card_uuids,
                      suggestion_uuids, result.suppressed, result.issued, *prefetch_completeness(result))


def make_audit_record(recorded_at: float, service_id: Any, http_status: int, problem: str | None, client_id: str,
                      total_ms: float | None, call: TracedCall | None) -> AuditRecord:
    """The audit record of a call from the facts ``call_facts`` read (``recorded_at``: seconds since the epoch)."""
    service_id = safe_identifier(service_id) or "?"
    service = SERVICES.get(service_id)
    call = call or _UNTRACED
    return AuditRecord.of(
        recorded_at=dt.datetime.fromtimestamp(recorded_at, dt.UTC), service_id=service_id,
        hook=service.hook if service else None, hook_instance=call.hook_instance, client_id=client_id,
        http_status=http_status, problem=problem, rule_ids=call.rule_ids, card_uuids=call.card_uuids,
        suggestion_uuids=call.suggestion_uuids, total_ms=total_ms, fhir_ms=call.fhir_ms,
        fhir_requests=call.fhir_requests, suppressed_rule_ids=call.suppressed_rule_ids,
        prefetch_provided=call.prefetch_provided, prefetch_keys=call.prefetch_keys, issued_cards=call.issued_cards)


def prefetch_completeness(result: HookResult) -> tuple[int | None, int | None]:
    """How many of the call's usable prefetch keys the client satisfied itself, and how many there were."""
    if not result.prefetch:
        return None, None
    usable = [o for o in result.prefetch.values() if o.status is not KeyStatus.NOT_APPLICABLE]
    provided = [o for o in usable if o.status in (KeyStatus.PROVIDED, KeyStatus.NULL)]
    return len(provided), len(usable)


def time_requests(app: Flask) -> None:
    """Start each request's clock outside Flask (``elapsed_ms``), so the duration includes whatever runs before
    the view (authentication, limits)."""
    inner = app.wsgi_app

    def timed(environ: dict[str, Any], start_response: Any) -> Any:
        environ[_STARTED] = time.perf_counter()
        return inner(environ, start_response)

    app.wsgi_app = timed  # type: ignore[method-assign]


def record_invocation(store: Any, facts: Callable[[], AuditRecord]) -> None:
    """Have ``store`` write the audit record ``facts`` makes (queued, where the store has the audit writer's queue).

    A record that cannot be stored is logged (its kind only) and the call is still answered: decision support
    stays available while the database is down, and the log shows which records are missing.
    """
    try:
        later = getattr(store, "record_invocation_soon", None)  # the audit writer's queue makes it in its thread
        if later is not None:
            later(facts)
        else:
            store.record_invocation(facts())
    except Exception as error:
        log.error("audit record of a cds_hooks.invoke call not stored: %s", type(error).__name__)
