"""Prefetch resolution, one outcome per key, exactly as CDS Hooks 2.0 defines prefetch.

Per key: a resource or Bundle is used as given (a paged Bundle is followed on the FHIR server), ``null``
means "no data", and an OperationOutcome or an absent key means "fetch it yourself". Fetches run in
parallel under the one deadline of the hook call. Keys no rule reads yet are not fetched.
"""

from __future__ import annotations

import re
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from enum import StrEnum
from functools import lru_cache, partial
from typing import Any

from needlecheck.cds_hooks.fhir_client import FhirClient, FhirUnavailable, matches, next_link
from needlecheck.cds_hooks.fhir_reads import Answer, CallReads
from needlecheck.cds_hooks.included_references import (
    honoured_includes,
    includes_of,
    missing_included_references,
)
from needlecheck.cds_hooks.services import PrefetchKey

_TOKEN = re.compile(r"\{\{\s*([A-Za-z.]+)\s*\}\}")


class KeyStatus(StrEnum):
    """How a prefetch key was satisfied."""

    PROVIDED = "provided"
    NULL = "null"
    FETCHED = "fetched"
    FAILED = "failed"
    NOT_APPLICABLE = "not-applicable"


@dataclass
class KeyOutcome:
    """The resources of one prefetch key, how they were obtained, and why not if they were not."""

    key: PrefetchKey
    status: KeyStatus
    resources: list[dict[str, Any]] = field(default_factory=list)
    problem: str | None = None


def token_values(context: dict[str, Any]) -> dict[str, str]:
    """Values of the prefetch tokens this request can fill (``context.*`` and ``userPractitionerId``)."""
    values = {f"context.{name}": value for name, value in context.items() if isinstance(value, str)}
    user = context.get("userId")
    if isinstance(user, str) and user.startswith("Practitioner/"):
        values["userPractitionerId"] = user.split("/", 1)[1]
    return values


def render_template(template: str, values: dict[str, str]) -> str | None:
    """The query with its tokens filled, or None when a token has no value in this request."""
    if any(name not in values for name in _tokens_of(template)):
        return None
    return _TOKEN.sub(lambda match: values[match.group(1)], template)


@lru_cache(maxsize=64)  # the services' templates: a handful, read on every call without prefetch
def _tokens_of(template: str) -> tuple[str, ...]:
    return tuple(_TOKEN.findall(template))


def _provided(key: PrefetchKey, value: Any, client: FhirClient | None) -> KeyOutcome | None:
    """The outcome of a value the client sent, or None when it must be fetched instead."""
    if value is None:
        return KeyOutcome(key, KeyStatus.NULL)
    kind = value.get("resourceType") if isinstance(value, dict) else None
    if not isinstance(kind, str) or kind == "OperationOutcome":
        return None
    if kind != "Bundle":
        return KeyOutcome(key, KeyStatus.PROVIDED, [value])
    resources = matches(value)
    following = next_link(value)
    if following is None:
        return KeyOutcome(key, KeyStatus.PROVIDED, resources)
    if client is None:
        return KeyOutcome(key, KeyStatus.FAILED, resources, "later pages need a FHIR server")
    try:
        return KeyOutcome(key, KeyStatus.PROVIDED, resources + client.collect(client.get(following)))
    except FhirUnavailable as error:
        return KeyOutcome(key, KeyStatus.FAILED, resources, f"later pages: {error}")


def _fetched(key: PrefetchKey, query: str, outcomes: dict[str, KeyOutcome], reads: CallReads,
             future: Future[Answer]) -> None:
    """File the answer of a key's query, and read by reference what its ``_include`` should have brought."""
    try:
        answer = future.result()
    except FhirUnavailable as error:
        outcomes[key.name] = KeyOutcome(key, KeyStatus.FAILED, problem=str(error))
        return
    outcome = outcomes[key.name] = KeyOutcome(key, KeyStatus.FETCHED, list(answer.resources))
    if not includes_of(query):
        return  # nothing to follow up
    missing = missing_included_references(query, answer.resources)
    if missing and (honoured := honoured_includes(answer.document)):
        # Only then is the self link worth decoding: an answer that holds what it includes needs no reading.
        missing = missing_included_references(query, answer.resources, honoured)
    for reference in missing:
        reads.ask(reference, partial(_included, outcome, reference))


def _included(outcome: KeyOutcome, reference: str, future: Future[Answer]) -> None:
    """Add a resource our own search's ``_include`` should have brought and the server left out.

    What the client prefetched is taken as the client's answer (a fully prefetched call makes no query).
    A reference that cannot be read is left out: the rules that needed it decide as without it.
    """
    try:
        resource = future.result().document
    except FhirUnavailable:
        return
    if resource.get("resourceType") == reference.split("/", 1)[0]:
        outcome.resources.append(resource)


def resolve_prefetch(keys: tuple[PrefetchKey, ...], prefetch: dict[str, Any], context: dict[str, Any],
                     client: FhirClient | None, pool: ThreadPoolExecutor,
                     reads: CallReads | None = None) -> dict[str, KeyOutcome]:
    """Resolve every key: use what was sent, fetch what is missing, in parallel, within the deadline.

    With ``reads`` (the call's queries) the fetches are only sent: their outcomes are filed when the caller
    runs ``reads``, beside the call's other queries. Without, they are sent and waited for here.
    """
    outcomes: dict[str, KeyOutcome] = {}
    to_fetch: list[tuple[PrefetchKey, str]] = []
    values = token_values(context)
    for key in keys:
        if key.name in prefetch:
            given = _provided(key, prefetch[key.name], client)
            if given is not None:
                outcomes[key.name] = given
                continue
        query = render_template(key.template, values)
        if query is None or not key.checks:
            outcomes[key.name] = KeyOutcome(key, KeyStatus.NOT_APPLICABLE)
        elif client is None:
            outcomes[key.name] = KeyOutcome(key, KeyStatus.FAILED, problem="not in prefetch and no FHIR server")
        else:
            to_fetch.append((key, query))
    if client is None or not to_fetch:
        return outcomes
    calls = CallReads(client, pool) if reads is None else reads
    for key, query in to_fetch:
        name = key.name
        # Filed in this order whatever order the answers come in (replaced by the answer's outcome).
        outcomes[name] = KeyOutcome(key, KeyStatus.FAILED, problem="no answer")
        calls.ask(query, partial(_fetched, key, query, outcomes, calls))
    if reads is None:
        calls.run()
    return outcomes
