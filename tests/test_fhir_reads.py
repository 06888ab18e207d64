"""``CallReads.run``: every query asked is waited for and followed up once, however its answer races the look.

The futures here stand in for the worker's pool (no server is involved): one is answered already, the other is
answered while ``run`` looks at it, as a pool thread may answer between two looks.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from needlecheck.cds_hooks.fhir_client import FhirClient, FhirLimits
from needlecheck.cds_hooks.fhir_reads import Answer, CallReads

PROCEDURE = {"resourceType": "Procedure", "id": "p1", "subject": {"reference": "Patient/1"}}
CONDITION = {"resourceType": "Condition", "id": "c1", "subject": {"reference": "Patient/1"}}


class AnsweredWhileLooked(Future[Answer]):
    """Not done the first two times it is asked, but answered right at the second (a pool thread finishing
    between two looks of ``run``: the futures of one query are looked at once per continuation)."""

    def __init__(self, answer: Answer) -> None:
        super().__init__()
        self._answer = answer
        self._looks = 0

    def done(self) -> bool:
        finished = super().done()
        self._looks += 1
        if not finished and self._looks == 2:
            self.set_result(self._answer)
        return finished


class Pool:
    """Hands out the given futures in order instead of running anything."""

    def __init__(self, *futures: Future[Answer]) -> None:
        self._futures = list(futures)

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future[Answer]:
        return self._futures.pop(0)


def answered(resource: dict[str, Any]) -> Future[Answer]:
    future: Future[Answer] = Future()
    future.set_result(Answer(resource, [resource]))
    return future


def client() -> FhirClient:
    return FhirClient("http://fhir.invalid/", None, FhirLimits())


def test_an_answer_that_arrives_while_run_looks_is_still_followed_up() -> None:
    reads = CallReads(client(), Pool(answered(PROCEDURE), AnsweredWhileLooked(Answer(CONDITION, [CONDITION]))))
    followed: list[str] = []
    reads.ask("Procedure/p1", lambda future: followed.append(future.result().document["id"]), required=True)
    reads.ask("Condition/c1", lambda future: followed.append(future.result().document["id"]), required=True)

    reads.run()

    assert followed == ["p1", "c1"]
    assert reads.pending() == []


def test_held_names_the_resources_of_every_answer_followed_up() -> None:
    reads = CallReads(client(), Pool(answered(PROCEDURE), AnsweredWhileLooked(Answer(CONDITION, [CONDITION]))))
    reads.ask("Procedure/p1", required=True)
    assert reads.held == set()
    reads.ask("Condition/c1", required=True)

    reads.run()

    assert reads.held == {"Procedure/p1", "Condition/c1"}
