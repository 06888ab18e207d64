"""The audit writer of a worker (cds_hooks/audit_writer.py): batches, a full queue, the flush at close.

The records go to a real SQLite store. A gate in front of its writes holds the writer thread where a slow or
locked database would, so what the queue does meanwhile can be observed; writes from other threads (the
request's own, when the queue is full or closed) pass the gate.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import threading
import uuid
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from bench.requests import claim_create_three_muscles_request
from needlecheck.cds_hooks.audit import AuditRecord
from needlecheck.cds_hooks.audit_writer import QueuedAuditStore
from needlecheck.cds_hooks.feedback import FeedbackItem
from needlecheck.cds_hooks.sqlite_store import SqliteStore
from needlecheck.cds_hooks.suppression import IssuedCard

WAIT = 30.0  # a guard against a hang, not a timing requirement


class GatedStore(SqliteStore):
    """SQLite whose writer-thread writes wait for ``gate``; every write is recorded (size, thread)."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.gate = threading.Event()
        self.batch_started = threading.Event()
        self.batches: list[tuple[int, str]] = []

    def record_invocations(self, records: list[AuditRecord]) -> None:
        if threading.current_thread().name == "audit-writer":
            self.batch_started.set()
            assert self.gate.wait(WAIT)
        super().record_invocations(records)
        self.batches.append((len(records), threading.current_thread().name))


def record(service_id: str = "dry-needling-order-sign", cards: tuple[IssuedCard, ...] = ()) -> AuditRecord:
    return AuditRecord(dt.datetime.now(dt.UTC), service_id, "order-sign", str(uuid.uuid4()), "anonymous", 200,
                       issued_cards=cards)


@pytest.fixture
def gated(tmp_path: Path) -> Iterator[GatedStore]:
    store = GatedStore(tmp_path / "audit.sqlite3")
    yield store
    store.gate.set()


def stored_instances(path: Path) -> set[str | None]:
    """The hook instances in the audit table, read over a connection of its own."""
    reader = SqliteStore(path)
    try:
        return {stored.hook_instance for stored in reader.invocations(10_000)}
    finally:
        reader.close()


def test_records_queued_while_the_writer_is_busy_go_in_one_batch(gated: GatedStore) -> None:
    queued = QueuedAuditStore(gated, capacity=100)
    first = record()
    queued.record_invocation(first)
    assert gated.batch_started.wait(WAIT)  # the thread holds the first record at the gate
    rest = [record() for _ in range(5)]
    for item in rest:
        queued.record_invocation(item)
    assert stored_instances(gated.path) == set()  # nothing written yet: the calls did not wait for it
    gated.gate.set()
    assert queued.flush(WAIT)
    assert gated.batches == [(1, "audit-writer"), (5, "audit-writer")]  # one transaction each
    assert stored_instances(gated.path) == {item.hook_instance for item in [first, *rest]}
    queued.close()


def test_records_arriving_while_a_batch_gathers_share_its_transaction_and_a_flush_does_not_wait(
        tmp_path: Path) -> None:
    store = GatedStore(tmp_path / "audit.sqlite3")
    store.gate.set()
    queued = QueuedAuditStore(store, capacity=100, linger=10 * WAIT)  # without the flush it would gather long
    records = [record() for _ in range(3)]
    for item in records:
        queued.record_invocation(item)
    assert stored_instances(store.path) == set()  # gathering: nothing written yet
    assert queued.flush(WAIT)
    assert store.batches == [(3, "audit-writer")]
    assert stored_instances(store.path) == {item.hook_instance for item in records}
    queued.close()


def test_a_full_batch_is_written_without_lingering(tmp_path: Path) -> None:
    store = GatedStore(tmp_path / "audit.sqlite3")
    store.gate.set()
    queued = QueuedAuditStore(store, capacity=100, batch_size=4, linger=10 * WAIT)
    records = [record() for _ in range(4)]
    for item in records:
        queued.record_invocation(item)
    assert store.batch_started.wait(WAIT)  # no flush, no close: the full batch ended the wait
    queued.close()
    assert store.batches == [(4, "audit-writer")]


def test_a_full_queue_writes_in_the_callers_thread_and_drops_nothing(gated: GatedStore,
                                                                     caplog: pytest.LogCaptureFixture) -> None:
    queued = QueuedAuditStore(gated, capacity=2)
    held = record()
    queued.record_invocation(held)
    assert gated.batch_started.wait(WAIT)
    waiting = [record(), record()]  # fill the queue
    for item in waiting:
        queued.record_invocation(item)
    overflow = record()
    queued.record_invocation(overflow)  # returns once written: the queue had no room
    assert stored_instances(gated.path) == {overflow.hook_instance}
    assert gated.batches == [(1, "MainThread")]
    assert "audit queue full" in caplog.text
    gated.gate.set()
    queued.close()
    assert stored_instances(gated.path) == {item.hook_instance for item in [held, *waiting, overflow]}


def test_close_writes_everything_queued_and_later_records_inline(gated: GatedStore) -> None:
    queued = QueuedAuditStore(gated, capacity=100)
    records = [record() for _ in range(20)]
    for item in records:
        queued.record_invocation(item)
    assert gated.batch_started.wait(WAIT)
    threading.Timer(0.5, gated.gate.set).start()  # the database frees up while close() waits
    queued.close()
    assert stored_instances(gated.path) == {item.hook_instance for item in records}
    late = record()
    queued.record_invocation(late)  # a request that finishes after the worker's exit hook
    assert late.hook_instance in stored_instances(gated.path)
    assert not any(thread.name == "audit-writer" and thread.is_alive() for thread in threading.enumerate())


def test_the_cards_of_a_batch_are_written_with_it_and_feedback_waits_for_them(gated: GatedStore) -> None:
    queued = QueuedAuditStore(gated, capacity=100)
    card = IssuedCard(str(uuid.uuid4()), "DN-CODE-001", "patient-key", "finding-key")
    queued.record_invocation(record(cards=(card,)))
    assert gated.batch_started.wait(WAIT)
    saved: list[int] = []
    feedback = threading.Thread(target=lambda: saved.append(queued.save_feedback("dry-needling-order-sign", [
        FeedbackItem(card.card_uuid, "overridden", "2026-03-02T10:01:00Z", (), None)])))
    feedback.start()
    feedback.join(0.3)
    assert feedback.is_alive() and gated.count_feedback() == 0  # held until the card is written
    gated.gate.set()
    feedback.join(WAIT)
    assert saved == [1]
    since = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
    assert queued.overridden_findings("patient-key", ["finding-key"], since) == {"finding-key"}
    queued.close()


def test_a_refused_record_does_not_cost_the_rest_of_its_batch(gated: GatedStore,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    queued = QueuedAuditStore(gated, capacity=100)
    queued.record_invocation(record())
    assert gated.batch_started.wait(WAIT)
    good = [record(), record()]
    queued.record_invocation(good[0])
    queued.record_invocation(record(service_id=None))  # type: ignore[arg-type]  # NOT NULL: refused
    queued.record_invocation(good[1])
    with caplog.at_level(logging.ERROR, logger="needlecheck"):
        gated.gate.set()
        assert queued.flush(WAIT)
    assert {item.hook_instance for item in good} <= stored_instances(gated.path)
    assert "1 audit record not stored: IntegrityError" in caplog.text
    queued.close()


def test_no_thread_starts_before_the_first_record(gated: GatedStore) -> None:
    # The gunicorn master wraps the store before it forks: a thread started there would not cross the fork.
    before = threading.active_count()
    queued = QueuedAuditStore(gated, capacity=10)
    queued.check()
    queued.count_feedback()
    assert threading.active_count() == before
    queued.close()


def test_a_record_queued_as_its_facts_is_made_by_the_writer_and_one_that_cannot_be_made_costs_no_other(
        gated: GatedStore, caplog: pytest.LogCaptureFixture) -> None:
    queued = QueuedAuditStore(gated, capacity=2)
    made_in: list[str] = []

    def facts(item: AuditRecord) -> Callable[[], AuditRecord]:
        def make() -> AuditRecord:
            made_in.append(threading.current_thread().name)
            return item

        return make

    def broken() -> AuditRecord:
        raise KeyError("the facts of a call that cannot be made into a record")

    first, second, third = record(), record(), record()
    queued.record_invocation_soon(facts(first))
    assert gated.batch_started.wait(WAIT)  # the writer holds the first at the gate
    queued.record_invocation_soon(broken)
    queued.record_invocation_soon(facts(second))
    queued.record_invocation_soon(facts(third))  # the queue (2) is full: made and written by the caller
    assert made_in == ["audit-writer", threading.current_thread().name]
    gated.gate.set()
    assert queued.flush(WAIT)
    assert made_in[2:] == ["audit-writer"]
    assert stored_instances(gated.path) == {first.hook_instance, second.hook_instance, third.hook_instance}
    assert "audit writer: 1 audit record not made: KeyError" in caplog.text
    queued.close()


def test_the_facts_queued_for_a_record_keep_nothing_of_the_call_but_identifiers_and_figures(
        app: Flask, client: FlaskClient) -> None:
    """A queued record must not keep its call alive (the billing context, the request's resources) until the
    writer's batch: a busy worker's garbage collector walked every call queued at the time on each collection."""
    queued: list[Callable[[], AuditRecord]] = []
    store = app.extensions["needlecheck.store"]

    class Capturing:
        def __getattr__(self, name: str) -> object:
            return getattr(store, name)

        def record_invocation_soon(self, facts: Callable[[], AuditRecord]) -> None:
            queued.append(facts)

    app.extensions["needlecheck.store"] = Capturing()
    answer = client.post("/cds-services/dry-needling-claim-create", json=claim_create_three_muscles_request())
    assert answer.status_code == 200 and answer.get_json()["cards"]  # a card with a suggestion: the most to keep
    [facts] = queued
    assert isinstance(facts, partial)
    kept: list[object] = [*facts.args, *facts.keywords.values()]
    leaves: set[type] = set()
    while kept:
        item = kept.pop()
        if isinstance(item, tuple | list):
            kept.extend(item)
        elif dataclasses.is_dataclass(item):
            kept.extend(getattr(item, f.name) for f in dataclasses.fields(item))
        else:
            leaves.add(type(item))
    assert leaves <= {str, int, float, bool, type(None)}
    record = facts()
    assert record.rule_ids == ("DN-CODE-001",) and len(record.card_uuids) == 1 and record.suggestion_uuids
