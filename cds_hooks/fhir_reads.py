"""The FHIR queries of one hook call: each sent once, all on the worker's thread pool, followed up as they answer.

A hook call without prefetch needs several kinds of data from the EHR: the prefetch searches, the billed
Procedures, the performers and places the drafts name, the resources a search's ``_include`` left out. Sent
in rounds (all searches, then everything their answers name), a call waits for its slowest search before it
sends what depends on a fast one. Here every query goes out as soon as what it depends on is known, and the
work that follows an answer (a continuation) runs on the calling thread as soon as that answer is in.

The same query asked twice (the signer's ``Practitioner`` read by the ``practitioner`` key and as a
performer, say) is sent once: both get the same answer.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any

from needlecheck.cds_hooks.fhir_client import FhirClient


@dataclass(frozen=True)
class Answer:
    """What the server answered to one query: the first document, and its resources (a search's matches
    on every page; a read's resource alone)."""

    document: dict[str, Any]
    resources: list[dict[str, Any]]


def _ask(client: FhirClient, query: str) -> Answer:
    document = client.get(query)
    # A read answers a resource; a search a Bundle whose later pages are followed here, off the calling thread.
    return Answer(document, client.collect(document))


class CallReads:
    """The queries of one hook call against ``client``; ``run()`` waits for them and runs the continuations."""

    def __init__(self, client: FhirClient, pool: ThreadPoolExecutor) -> None:
        self.client = client
        self._pool = pool
        self._asked: dict[str, Future[Answer]] = {}
        self._then: list[tuple[Future[Answer], Callable[[Future[Answer]], None]]] = []
        self._after_each: list[Callable[[], None]] = []
        self.held: set[str] = set()  # ``Type/id`` of every resource answered so far (continuations run)

    def ask(self, query: str, then: Callable[[Future[Answer]], None] | None = None) -> Future[Answer]:
        """Send ``query`` unless it was sent already; ``then(future)`` runs in ``run()`` once it has answered."""
        future = self._asked.get(query)
        if future is None:
            future = self._asked[query] = self._pool.submit(_ask, self.client, query)
            self._then.append((future, self._note_held))
        if then is not None:
            self._then.append((future, then))
        return future

    def after_each(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` after the continuations of each answer (to send what no pending query can bring)."""
        self._after_each.append(callback)

    def pending(self) -> list[str]:
        """The queries sent whose answers have not been followed up yet."""
        waiting = {id(future) for future, _ in self._then}
        return [query for query, future in self._asked.items() if id(future) in waiting]

    def run(self) -> None:
        """Wait for every query that has a continuation, running the continuations (which may ask more) as the
        answers arrive, in the order they were registered."""
        while self._then:
            wait({future for future, _ in self._then}, return_when=FIRST_COMPLETED)
            ready = [(future, then) for future, then in self._then if future.done()]
            self._then = [(future, then) for future, then in self._then if not future.done()]
            for future, then in ready:
                then(future)
            for callback in self._after_each:
                callback()

    def _note_held(self, future: Future[Answer]) -> None:
        if future.exception() is None:
            self.held.update(f"{r.get('resourceType')}/{r.get('id')}" for r in future.result().resources)
