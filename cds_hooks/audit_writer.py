"""Audit records written off the request path: a bounded queue per worker process, drained by one thread.

Under ``needlecheck serve`` a hook call hands what its audit record is made of (``audit.call_facts``: the facts
only the request's thread can read, and the call's result with the cards it shows) to this worker's queue and
answers at once; one background thread makes the records and writes what has queued up in one transaction per
batch (making a record in the request cost it 50-90 us of a loaded worker's CPU, with cold caches). Once a
record arrives, the thread lets the batch gather for ``LINGER_SECONDS`` (unless ``BATCH_SIZE`` records wait, or
someone flushes or closes): a transaction per record cost about 100 us of CPU and woke the thread, and took the
GIL from the requests, on every call; in batches of five or more it is about 30 us a record. Three rules keep
every record:

- The thread starts on the first record a process queues, so it always belongs to a gunicorn worker, never to
  the master the workers fork from (a thread does not cross a fork; a queue inherited across one is dropped,
  its records being the parent's to write).
- ``close()`` (gunicorn's ``worker_exit`` hook, and ``atexit`` as a backstop) writes everything still queued
  before the worker exits, so a graceful stop (SIGTERM, SIGINT, SIGQUIT) loses nothing. A record queued after
  ``close()`` is written in the calling thread.
- When the queue is full (the database is slower than the calls), the record is written in the request's own
  thread, as it was before this queue existed: the call pays its write and the worker slows to the database's
  pace instead of dropping records or holding requests on a lock. Nothing is ever dropped silently; a batch the
  database refuses is logged (how many records, and the error's type), as a refused single write was before.

Reads that must see the audit trail of this worker flush the queue first: ``invocations`` and ``report_data``,
and ``save_feedback``, so that a card this worker issued is in ``card_issued`` before any feedback on it is
(repeat suppression joins the two). Only a SIGKILL, a crash or a power loss can lose queued records: at most
the queue of each worker, in practice the calls of the last ``LINGER_SECONDS``.
"""

from __future__ import annotations

import atexit
import contextlib
import datetime as dt
import logging
import os
import queue
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from flask import Flask

from needlecheck.cds_hooks.audit import AuditRecord
from needlecheck.cds_hooks.feedback import FeedbackItem
from needlecheck.cds_hooks.store import Store, StoreUnavailable

if TYPE_CHECKING:
    from needlecheck.cds_hooks.governance_data import ReportData

log = logging.getLogger("needlecheck")

DEFAULT_CAPACITY = 1000
BATCH_SIZE = 200  # records per transaction, at most
LINGER_SECONDS = 0.1  # how long a batch may gather after its first record
FLUSH_TIMEOUT_SECONDS = 8.0  # within gunicorn's graceful_timeout (10 s), which then kills the worker
_FULL_WARNING_INTERVAL = 60.0
_STOP = object()


class _WorkerQueue:
    """The queue, its writer thread and the counts ``flush`` waits on, of one process."""

    def __init__(self, capacity: int) -> None:
        self.pid = os.getpid()
        self.records: queue.Queue[object] = queue.Queue(maxsize=capacity)
        self.done = threading.Condition()
        self.queued = 0  # records put on the queue
        self.handled = 0  # records the thread has written, or failed to write (and logged)
        self.closed = False  # set under ``done``: records arriving afterwards are written by their caller
        self.hurry = 0  # callers of ``flush`` waiting (under ``done``): the batch is written without lingering
        self.thread: threading.Thread | None = None


class QueuedAuditStore:
    """A ``Store`` whose audit records a background thread of each worker writes in batches.

    Everything else (feedback, reads, health) goes straight to the wrapped store.
    """

    def __init__(self, store: Store, capacity: int = DEFAULT_CAPACITY, batch_size: int = BATCH_SIZE,
                 linger: float = LINGER_SECONDS) -> None:
        """Wrap ``store``; no thread starts until a process queues its first record."""
        if capacity < 1:
            raise ValueError("the audit queue needs room for at least one record")
        self.store = store
        self.capacity = capacity
        self.batch_size = batch_size
        self.linger = linger
        self._lock = threading.Lock()
        self._worker: _WorkerQueue | None = None
        self._closed_in: int | None = None  # the pid that closed it: later records of that process go inline
        self._full_warned_at = float("-inf")

    # --- the audit records ------------------------------------------------------------------------------

    def record_invocation(self, record: AuditRecord) -> None:
        """Queue the record for the writer thread; write it here if the queue is full or already closed."""
        if not self._queued(record):
            self.store.record_invocation(record)

    def record_invocation_soon(self, make: Callable[[], AuditRecord]) -> None:
        """Queue ``make`` for the writer thread, which calls it and writes the record it returns with its batch
        (the request thread only reads the facts ``make`` holds); made and written here if the queue is full or
        already closed."""
        if not self._queued(make):
            self.store.record_invocation(make())

    def _queued(self, item: AuditRecord | Callable[[], AuditRecord]) -> bool:
        """Put ``item`` on this process's queue; False when the caller must write it (full, or closed)."""
        worker = self._current()
        if worker is None:
            return False
        with worker.done:
            if worker.closed:
                return False
            try:
                worker.records.put_nowait(item)
            except queue.Full:
                self._warn_full()
                return False
            worker.queued += 1
            if worker.queued - worker.handled == self.batch_size:
                worker.done.notify_all()  # a full batch waits: no more lingering
        return True

    def record_invocations(self, records: list[AuditRecord]) -> None:
        """Queue several records (as ``record_invocation`` does each)."""
        for record in records:
            self.record_invocation(record)

    def flush(self, timeout: float = FLUSH_TIMEOUT_SECONDS) -> bool:
        """Wait until every record this process queued so far is written (or its failure logged); False if
        ``timeout`` seconds passed first."""
        worker = self._worker
        if worker is None or worker.pid != os.getpid():
            return True
        with worker.done:
            target = worker.queued
            worker.hurry += 1
            worker.done.notify_all()  # a lingering writer writes its batch now
            try:
                return worker.done.wait_for(lambda: worker.handled >= target, timeout)
            finally:
                worker.hurry -= 1

    def close(self) -> None:
        """Write what is queued, stop this process's writer thread, then close the wrapped store's connections.

        Idempotent; records that arrive afterwards (a request finishing late) are written in the calling thread.
        """
        with self._lock:
            self._closed_in = os.getpid()
            worker = self._worker
        if worker is not None and worker.pid == os.getpid() and worker.thread is not None:
            with worker.done:
                already = worker.closed
                worker.closed = True  # every record queued so far is ahead of the stop mark
                worker.done.notify_all()
            if not already:
                self._stop(worker)
        self.store.close()

    def _stop(self, worker: _WorkerQueue) -> None:
        """Let the thread write what is queued and end; log how many records were left if it could not."""
        deadline = time.monotonic() + FLUSH_TIMEOUT_SECONDS
        with contextlib.suppress(queue.Full):  # the thread then stops at the join's timeout, counted below
            worker.records.put(_STOP, timeout=FLUSH_TIMEOUT_SECONDS)
        assert worker.thread is not None
        worker.thread.join(max(0.0, deadline - time.monotonic()))
        with worker.done:
            left = worker.queued - worker.handled
        if left:
            log.error("audit writer: %d audit record(s) not written within %.0f s of shutdown", left,
                      FLUSH_TIMEOUT_SECONDS)

    def _current(self) -> _WorkerQueue | None:
        """This process's queue, its thread started now if need be; None once this process has closed it."""
        pid = os.getpid()
        worker = self._worker
        if worker is not None and worker.pid == pid:
            return worker
        with self._lock:
            if self._closed_in == pid:
                return None
            if self._worker is None or self._worker.pid != pid:
                worker = _WorkerQueue(self.capacity)
                worker.thread = threading.Thread(target=self._drain, args=(worker,), name="audit-writer",
                                                 daemon=True)
                worker.thread.start()
                self._worker = worker
                atexit.register(self.close)
            return self._worker

    def _drain(self, worker: _WorkerQueue) -> None:
        """The writer thread: take what has queued up (waiting for at least one record), write it, repeat."""
        stopping = False
        while not stopping:
            batch: list[AuditRecord | Callable[[], AuditRecord]] = []
            item = worker.records.get()
            if item is not _STOP:
                self._linger(worker)
            while item is not _STOP:
                batch.append(item)  # type: ignore[arg-type]
                if len(batch) >= self.batch_size:
                    break
                try:
                    item = worker.records.get_nowait()
                except queue.Empty:
                    break
            stopping = item is _STOP
            if batch:
                self._write(batch)
                with worker.done:
                    worker.handled += len(batch)
                    worker.done.notify_all()

    def _linger(self, worker: _WorkerQueue) -> None:
        """Let a batch gather: wait up to ``linger`` seconds unless a batch is full, a flush waits or it closed.

        Puts do not wake this wait (the queue notifies only its own getters), so the requests pay no wake-up."""
        deadline = time.monotonic() + self.linger
        with worker.done:
            while not worker.hurry and not worker.closed and worker.queued - worker.handled < self.batch_size:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return
                worker.done.wait(remaining)

    def _write(self, items: list[AuditRecord | Callable[[], AuditRecord]]) -> None:
        batch = []
        for item in items:
            try:
                batch.append(item if isinstance(item, AuditRecord) else item())
            except Exception as error:  # a record that cannot be made is logged like one that cannot be stored
                log.error("audit writer: 1 audit record not made: %s", type(error).__name__)
        if not batch:
            return
        try:
            self.store.record_invocations(batch)
            return
        except StoreUnavailable as error:
            # The database is down or locked past its timeout: one try per record would only wait longer.
            log.error("audit writer: %d audit record(s) not stored: %s", len(batch), type(error).__name__)
            return
        except Exception as error:
            if len(batch) == 1:
                log.error("audit writer: 1 audit record not stored: %s", type(error).__name__)
                return
        # Something in the batch was refused: write its records one by one, so one cannot cost the others.
        for record in batch:
            try:
                self.store.record_invocation(record)
            except Exception as error:
                log.error("audit writer: 1 audit record not stored: %s", type(error).__name__)

    def _warn_full(self) -> None:
        now = time.monotonic()
        if now - self._full_warned_at >= _FULL_WARNING_INTERVAL:
            self._full_warned_at = now
            log.warning("audit queue full (%d records): writing audit records in the requests until it drains",
                        self.capacity)

    # --- everything else: the wrapped store, after a flush where the answer depends on the audit trail --------

    def save_feedback(self, service_id: str, items: list[FeedbackItem]) -> int:
        """Store feedback once this worker's issued cards are written (suppression joins the two)."""
        self.flush()
        return self.store.save_feedback(service_id, items)

    def count_feedback(self, service_id: str | None = None) -> int:
        """How many feedback items are stored."""
        return self.store.count_feedback(service_id)

    def invocations(self, limit: int = 100) -> list[AuditRecord]:
        """The latest audit records, this worker's queued ones included."""
        self.flush()
        return self.store.invocations(limit)

    def overridden_findings(self, patient_key: str, finding_keys: list[str], since: dt.datetime) -> set[str]:
        """Which findings were overridden (no flush: a hook call must not wait for the writer)."""
        return self.store.overridden_findings(patient_key, finding_keys, since)

    def report_data(self, since: dt.datetime | None, until: dt.datetime | None) -> ReportData:
        """The governance report's rows, this worker's queued records included."""
        self.flush()
        return self.store.report_data(since, until)

    def check(self) -> None:
        """Raise StoreUnavailable unless the database answers."""
        self.store.check()

    def describe(self) -> str:
        """Where the data is."""
        return self.store.describe()


def queue_audit_writes(app: Flask, capacity: int) -> None:
    """Have ``app``'s audit records written by each worker's writer thread (``capacity`` 0: in the request)."""
    if capacity > 0:
        app.extensions["needlecheck.store"] = QueuedAuditStore(app.extensions["needlecheck.store"], capacity)


def close_audit_writer(app: Any) -> None:
    """Write the queued audit records of this process and stop its writer (gunicorn's ``worker_exit``)."""
    store = getattr(app, "extensions", {}).get("needlecheck.store")
    if isinstance(store, QueuedAuditStore):
        store.close()
