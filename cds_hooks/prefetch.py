"""Prefetch resolution, one outcome per key, exactly as CDS Hooks 2.0 defines prefetch.

Per key: a resource or Bundle is used as given (a paged Bundle is followed on the FHIR server), ``null``
means "no data", and an OperationOutcome or an absent key means "fetch it yourself". Fetches run in
parallel under the one deadline of the hook call. Keys no rule reads yet are not fetched.
"""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from needlecheck.cds_hooks.fhir_client import FhirClient, FhirUnavailable, matches, next_link
from needlecheck.cds_hooks.included_references import missing_included_references
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
    missing = [name for name in _TOKEN.findall(template) if name not in values]
    if missing:
        return None
    return _TOKEN.sub(lambda match: values[match.group(1)], template)


def _is_outcome(value: Any) -> bool:
    return isinstance(value, dict) and value.get("resourceType") == "OperationOutcome"


def _provided(key: PrefetchKey, value: Any, client: FhirClient | None) -> KeyOutcome | None:
    """The outcome of a value the client sent, or None when it must be fetched instead."""
    if value is None:
        return KeyOutcome(key, KeyStatus.NULL)
    if not isinstance(value, dict) or not isinstance(value.get("resourceType"), str) or _is_outcome(value):
        return None
    if value["resourceType"] != "Bundle":
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


def _fetch(key: PrefetchKey, query: str, client: FhirClient) -> KeyOutcome:
    try:
        return KeyOutcome(key, KeyStatus.FETCHED, client.search(query))
    except FhirUnavailable as error:
        return KeyOutcome(key, KeyStatus.FAILED, problem=str(error))


def resolve_prefetch(keys: tuple[PrefetchKey, ...], prefetch: dict[str, Any], context: dict[str, Any],
                     client: FhirClient | None, pool: ThreadPoolExecutor) -> dict[str, KeyOutcome]:
    """Resolve every key: use what was sent, fetch what is missing, in parallel, within the deadline."""
    outcomes: dict[str, KeyOutcome] = {}
    to_fetch: dict[str, str] = {}
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
            to_fetch[key.name] = query
    futures = {name: pool.submit(_fetch, _key(keys, name), query, client) for name, query in to_fetch.items()}
    for name, future in futures.items():
        outcomes[name] = future.result()
    if client is not None:
        _read_left_out_includes(outcomes, client, pool)
    return outcomes


def _read_left_out_includes(outcomes: dict[str, KeyOutcome], client: FhirClient, pool: ThreadPoolExecutor) -> None:
    """Read by reference what our own search's ``_include`` should have brought and the server left out.

    What the client prefetched is taken as the client's answer (a fully prefetched call makes no query).
    A reference that cannot be read is left out: the rules that needed it decide as without it.
    """
    reads = {(name, reference): pool.submit(client.get, reference)
             for name, outcome in outcomes.items() if outcome.status is KeyStatus.FETCHED
             for reference in missing_included_references(outcome.key.template, outcome.resources)}
    for (name, reference), future in reads.items():
        try:
            resource = future.result()
        except FhirUnavailable:
            continue
        if resource.get("resourceType") == reference.split("/", 1)[0]:
            outcomes[name].resources.append(resource)


def _key(keys: tuple[PrefetchKey, ...], name: str) -> PrefetchKey:
    return next(key for key in keys if key.name == name)
