"""The SQLite backend: one WAL-mode file in the data directory, shared by the workers of one instance.

A client may send the same feedback again (a retry, or a second call for the same card); the unique key
(service, card, outcome, timestamp) makes the repeat a no-op instead of a second row.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from needlecheck.cds_hooks.audit import AuditRecord
from needlecheck.cds_hooks.feedback import FeedbackItem
from needlecheck.cds_hooks.store import StoreUnavailable

_SCHEMA = """
CREATE TABLE IF NOT EXISTS feedback (
    id INTEGER PRIMARY KEY,
    service_id TEXT NOT NULL,
    card_uuid TEXT NOT NULL,
    outcome TEXT NOT NULL,
    outcome_timestamp TEXT NOT NULL,
    accepted_suggestions TEXT NOT NULL,
    override_reason TEXT,
    received_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    UNIQUE (service_id, card_uuid, outcome, outcome_timestamp)
);
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY,
    recorded_at TEXT NOT NULL,
    service_id TEXT NOT NULL,
    hook TEXT,
    hook_instance TEXT,
    client_id TEXT NOT NULL,
    http_status INTEGER NOT NULL,
    problem TEXT,
    rule_ids TEXT NOT NULL,
    card_uuids TEXT NOT NULL,
    suggestion_uuids TEXT NOT NULL,
    total_ms REAL,
    fhir_ms REAL,
    fhir_requests INTEGER
);
CREATE INDEX IF NOT EXISTS audit_recorded_at ON audit (recorded_at);
CREATE INDEX IF NOT EXISTS audit_hook_instance ON audit (hook_instance);
"""

_AUDIT_COLUMNS = ("recorded_at, service_id, hook, hook_instance, client_id, http_status, problem, rule_ids, "
                  "card_uuids, suggestion_uuids, total_ms, fhir_ms, fhir_requests")


class SqliteStore:
    """Feedback and audit rows in one SQLite database; safe to share between threads and worker processes."""

    def __init__(self, path: Path) -> None:
        """Create the data directory and the schema now; connections are opened per thread on first use.

        No connection is kept open after this: ``needlecheck serve`` opens the store in the gunicorn master,
        which creates the schema once, before the workers fork (an SQLite connection must not cross a fork).
        """
        self.path = path
        self._local = threading.local()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise StoreUnavailable(f"cannot create the data directory {path.parent}: "
                                   f"{error.strerror or error}") from error
        with self._errors():
            connection = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            try:
                connection.execute("PRAGMA journal_mode=WAL")
                connection.executescript(_SCHEMA)
            finally:
                connection.close()

    def _connection(self) -> sqlite3.Connection:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            # WAL lets readers and the writer of several gunicorn workers work side by side; the
            # busy timeout makes a writer wait for the lock instead of failing.
            connection = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            connection.execute("PRAGMA busy_timeout=30000")
            self._local.connection = connection
        return connection

    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.OperationalError as error:
            raise StoreUnavailable(f"SQLite {self.path}: {error}") from error

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        connection = self._connection()
        with self._errors():
            connection.execute("BEGIN IMMEDIATE")
            try:
                yield connection
                connection.execute("COMMIT")
            except BaseException:
                connection.execute("ROLLBACK")
                raise

    def save_feedback(self, service_id: str, items: list[FeedbackItem]) -> int:
        """Store every item in one transaction; returns how many were new."""
        rows = [(service_id, item.card, item.outcome, item.outcome_timestamp,
                 json.dumps(list(item.accepted_suggestions)), item.override_reason) for item in items]
        with self._transaction() as connection:
            before = connection.total_changes
            connection.executemany(
                "INSERT OR IGNORE INTO feedback (service_id, card_uuid, outcome, outcome_timestamp, "
                "accepted_suggestions, override_reason) VALUES (?, ?, ?, ?, ?, ?)", rows)
            return connection.total_changes - before

    def count_feedback(self, service_id: str | None = None) -> int:
        """How many feedback rows there are (for one service, or in all)."""
        query, args = "SELECT COUNT(*) FROM feedback", ()
        if service_id is not None:
            query, args = query + " WHERE service_id = ?", (service_id,)
        with self._errors():
            return int(self._connection().execute(query, args).fetchone()[0])

    def record_invocation(self, record: AuditRecord) -> None:
        """Append one audit record."""
        row = (_timestamp(record.recorded_at), record.service_id, record.hook, record.hook_instance,
               record.client_id, record.http_status, record.problem, json.dumps(list(record.rule_ids)),
               json.dumps(list(record.card_uuids)), json.dumps(list(record.suggestion_uuids)), record.total_ms,
               record.fhir_ms, record.fhir_requests)
        with self._errors():
            self._connection().execute(f"INSERT INTO audit ({_AUDIT_COLUMNS}) VALUES ({', '.join('?' * 13)})", row)

    def invocations(self, limit: int = 100) -> list[AuditRecord]:
        """The latest audit records, newest first."""
        with self._errors():
            rows = self._connection().execute(
                f"SELECT {_AUDIT_COLUMNS} FROM audit ORDER BY id DESC LIMIT ?", (limit,)).fetchall()
        return [AuditRecord(dt.datetime.fromisoformat(row[0]), row[1], row[2], row[3], row[4], row[5], row[6],
                            tuple(json.loads(row[7])), tuple(json.loads(row[8])), tuple(json.loads(row[9])),
                            row[10], row[11], row[12]) for row in rows]

    def check(self) -> None:
        """Raise StoreUnavailable unless the database can be read."""
        with self._errors():
            self._connection().execute("SELECT 1 FROM feedback LIMIT 1").fetchall()

    def describe(self) -> str:
        """The database file."""
        return f"SQLite {self.path}"

    def close(self) -> None:
        """Close this thread's connection (others close when their thread ends)."""
        connection = getattr(self._local, "connection", None)
        if connection is not None:
            connection.close()
            self._local.connection = None


def _timestamp(moment: dt.datetime) -> str:
    # ISO 8601 UTC with a fixed width, so text order is time order.
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
