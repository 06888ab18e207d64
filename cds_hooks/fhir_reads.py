"""The FHIR queries of one hook call: each sent once, all on the worker's thread pool, followed up as they answer.

A hook call without prefetch needs several kinds of data from the EHR: the prefetch searches, the billed
Procedures, the performers and places the drafts name, the resources a search's ``_include`` left out. Sent
in rounds (all searches, then everything their answers name), a call waits for its slowest search before it
sends what depends on a fast one. Here every query goes out as soon as what it depends on is known, and the
work that follows an answer (a continuation) runs on the calling thread as soon as that answer is in.

The same query asked twice (the signer's ``Practitioner`` read by the ``practitioner`` key and as a
performer, say) is sent once: both get the same answer.

Queries asked together go out together: as one batch Bundle when the server's CapabilityStatement lists the
``batch`` interaction, else side by side on the pool. A server answers a batch in one request, where queries
side by side may be answered one after the other anyway (a server on one event loop), each with its own
per-request cost. What the call cannot do without (the billed Procedures: 412 without them) is never put in a
batch, so a batch held up by a slow search cannot cost the claim its answer. A batch the server refuses is
sent again one query at a time, and the server is not sent batches again for the hour (``fhir_pool``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from functools import partial
from typing import Any

from needlecheck.cds_hooks import fhir_pool
from needlecheck.cds_hooks.fhir_client import FhirClient, FhirRefused, FhirUnavailable


@dataclass(frozen=True)
class Answer:
    """What the server answered to one query: the first document, and its resources (a search's matches
    on every page; a read's resource alone)."""

    document: dict[str, Any]
    resources: list[dict[str, Any]]


# Refusals that say nothing of batches: the token, the rate or the server's health (each query would get them).
_NOT_ABOUT_BATCHES = frozenset({401, 403, 429, 502, 503, 504})


def _answer(client: FhirClient, document: dict[str, Any]) -> Answer:
    # A read answers a resource; a search a Bundle whose later pages are followed here, off the calling thread.
    return Answer(document, client.collect(document))


def _ask(client: FhirClient, query: str) -> Answer:
    return _answer(client, client.get(query))


def _settle(future: Future[Answer], work: Callable[[], Answer]) -> None:
    try:
        future.set_result(work())
    except BaseException as error:  # whoever waits for the answer gets the error
        future.set_exception(error)


def _learn_batch_support(client: FhirClient) -> None:
    """Read the server's CapabilityStatement and remember whether it answers batches (unreadable: it does not)."""
    try:
        supported = fhir_pool.declares_batch(client.get("metadata"))
    except FhirUnavailable:
        supported = False
    fhir_pool.remember_batch_support(client.base_url, supported)


class CallReads:
    """The queries of one hook call against ``client``; ``run()`` waits for them and runs the continuations."""

    def __init__(self, client: FhirClient, pool: ThreadPoolExecutor) -> None:
        self.client = client
        self._pool = pool
        self._asked: dict[str, Future[Answer]] = {}
        self._unsent: list[tuple[str, Future[Answer]]] = []
        self._then: list[tuple[Future[Answer], Callable[[Future[Answer]], None]]] = []
        self._held: set[str] = set()
        self._answered: list[Future[Answer]] = []  # followed up, their resources not yet in ``_held``

    def ask(self, query: str, then: Callable[[Future[Answer]], None] | None = None,
            required: bool = False) -> Future[Answer]:
        """Ask ``query`` unless it was asked already; ``then(future)`` runs in ``run()`` once it has answered.

        A ``required`` query is sent at once, on its own. The others wait for ``send()`` (or ``run()``), so
        that the queries asked together can go out together.
        """
        future = self._asked.get(query)
        if future is None:
            if required:
                future = self._pool.submit(_ask, self.client, query)
            else:
                future = Future()
                self._unsent.append((query, future))
            self._asked[query] = future
            # Every query is waited for by run(), with or without a continuation of its own.
            self._then.append((future, self._answered.append))
        if then is not None:
            self._then.append((future, then))
        return future

    def pending(self) -> list[str]:
        """The queries asked whose answers have not been followed up yet."""
        waiting = {id(future) for future, _ in self._then}
        return [query for query, future in self._asked.items() if id(future) in waiting]

    def send(self) -> None:
        """Send the queries asked since the last ``send()``: as one batch where the server takes batches."""
        unsent, self._unsent = self._unsent, []
        if not unsent:
            return
        base_url = self.client.base_url
        batches = fhir_pool.batch_support(base_url)
        if batches is None and fhir_pool.should_ask_batch_support(base_url):
            self._pool.submit(_learn_batch_support, self.client)  # for the next calls: this one does not wait
        if batches and len(unsent) > 1:
            batched = {id(future) for _, future in unsent}
            if all(future.done() or id(future) in batched for future, _ in self._then):
                self._send_batch(unsent)  # on this thread, which has nothing else to wait for meanwhile
            else:
                self._pool.submit(self._send_batch, unsent)
            return
        for query, future in unsent:
            self._pool.submit(_settle, future, partial(_ask, self.client, query))

    def _send_batch(self, unsent: list[tuple[str, Future[Answer]]]) -> None:
        """One batch for ``unsent``; one query at a time when the server refused the batch."""
        try:
            answers = self.client.batch([query for query, _ in unsent])
        except FhirUnavailable as error:
            if isinstance(error, FhirRefused) and error.status not in _NOT_ABOUT_BATCHES:
                fhir_pool.remember_batch_support(self.client.base_url, False)
            if time.monotonic() >= self.client.deadline:
                for _, future in unsent:
                    future.set_exception(FhirUnavailable(str(error)))  # each as it would have failed alone
                return
            for query, future in unsent:  # one by one in the time left
                self._pool.submit(_settle, future, partial(_ask, self.client, query))
            return
        for (_, future), answer in zip(unsent, answers, strict=True):
            if isinstance(answer, FhirUnavailable):
                future.set_exception(answer)
            else:
                _settle(future, partial(_answer, self.client, answer))

    def run(self) -> None:
        """Send what was asked, and wait for every query asked, running the continuations (which may ask
        more) as the answers arrive, in the order they were registered."""
        self.send()
        while self._then:
            # One look at each future: one answered between two looks would be neither ready nor waiting.
            ready: list[tuple[Future[Answer], Callable[[Future[Answer]], None]]] = []
            waiting: list[tuple[Future[Answer], Callable[[Future[Answer]], None]]] = []
            for pair in self._then:
                (ready if pair[0].done() else waiting).append(pair)
            if not ready:  # a batch sent from this thread has answered everything by now: no wait at all
                wait({future for future, _ in waiting}, return_when=FIRST_COMPLETED)
                continue
            self._then = waiting
            for future, then in ready:
                then(future)
            self.send()

    @property
    def held(self) -> set[str]:
        """``Type/id`` of every resource answered so far whose answer has been followed up."""
        answered, self._answered[:] = list(self._answered), []
        for future in answered:
            if future.exception() is None:
                self._held.update(f"{r.get('resourceType')}/{r.get('id')}" for r in future.result().resources)
        return self._held
