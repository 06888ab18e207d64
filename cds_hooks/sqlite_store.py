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
from typing import Any

from needlecheck.cds_hooks.audit import AuditRecord
from needlecheck.cds_hooks.feedback import FeedbackItem
from needlecheck.cds_hooks.governance_data import FeedbackOnCard, IssuedCardRow, ReportData
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
                  "card_uuids, suggestion_uuids, total_ms, fhir_ms, fhir_requests, "
                  "suppressed_rule_ids, prefetch_provided, prefetch_keys")

# --- Alert governance (cds_hooks/suppression.py, cds_hooks/governance_report.py) -------------------------
# The cards shown, by uuid, with their rule and the keyed hashes of patient and finding; and the audit
# columns added for governance (databases created before them gain them at start-up).
_GOVERNANCE_SCHEMA = """
CREATE TABLE IF NOT EXISTS card_issued (
    card_uuid TEXT PRIMARY KEY,
    service_id TEXT NOT NULL,
    rule_id TEXT NOT NULL,
    patient_key TEXT NOT NULL,
    finding_key TEXT,
    issued_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS card_issued_patient ON card_issued (patient_key, finding_key);
CREATE INDEX IF NOT EXISTS card_issued_at ON card_issued (issued_at);
CREATE INDEX IF NOT EXISTS feedback_card ON feedback (card_uuid);
"""
_GOVERNANCE_AUDIT_COLUMNS = (("suppressed_rule_ids", "TEXT NOT NULL DEFAULT '[]'"), ("prefetch_provided", "INTEGER"),
                             ("prefetch_keys", "INTEGER"))


def _create_governance_schema(connection: sqlite3.Connection) -> None:
    connection.execute("BEGIN IMMEDIATE")
    try:
        present = {row[1] for row in connection.execute("PRAGMA table_info(audit)")}
        for column, declaration in _GOVERNANCE_AUDIT_COLUMNS:
            if column not in present:
                connection.execute(f"ALTER TABLE audit ADD COLUMN {column} {declaration}")
        for statement in filter(str.strip, _GOVERNANCE_SCHEMA.split(";")):
            connection.execute(statement)  # not executescript: it would commit the transaction first
        connection.execute("COMMIT")
    except BaseException:
        connection.execute("ROLLBACK")
        raise
# --- end of alert governance -------------------------------------------------------------------------------


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
                _create_governance_schema(connection)
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

    def _audit_connection(self) -> sqlite3.Connection:
        """This thread's connection for audit batches: ``synchronous=NORMAL``, where feedback keeps ``FULL``.

        In WAL mode NORMAL skips the fsync at each commit (the WAL is synced at checkpoints, and by the next
        FULL commit of any connection); a power loss can roll back the audit batches committed since, never
        corrupt the file. A per-call record is worth that; an answer to a client's feedback is not.
        """
        connection = getattr(self._local, "audit_connection", None)
        if connection is None:
            connection = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            connection.execute("PRAGMA busy_timeout=30000")
            connection.execute("PRAGMA synchronous=NORMAL")
            self._local.audit_connection = connection
        return connection

    @contextmanager
    def _transaction(self, connection: sqlite3.Connection | None = None) -> Iterator[sqlite3.Connection]:
        connection = connection or self._connection()
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
        """Append one audit record, and the cards it shows in the same transaction."""
        self.record_invocations([record])

    def record_invocations(self, records: list[AuditRecord]) -> None:
        """Append audit records and the cards they show in one transaction, on this thread's audit connection
        (``synchronous=NORMAL``: see ``_audit_connection``)."""
        rows = [(_timestamp(record.recorded_at), record.service_id, record.hook, record.hook_instance,
                 record.client_id, record.http_status, record.problem, _json_list(record.rule_ids),
                 _json_list(record.card_uuids), _json_list(record.suggestion_uuids), record.total_ms,
                 record.fhir_ms, record.fhir_requests, _json_list(record.suppressed_rule_ids),
                 record.prefetch_provided, record.prefetch_keys) for record in records]
        with self._transaction(self._audit_connection()) as connection:
            connection.executemany(f"INSERT INTO audit ({_AUDIT_COLUMNS}) VALUES ({', '.join('?' * 16)})", rows)
            for record in records:
                if record.issued_cards:
                    _insert_issued_cards(connection, record)

    def invocations(self, limit: int = 100) -> list[AuditRecord]:
        """The latest audit records, newest first."""
        with self._errors():
            rows = self._connection().execute(
                f"SELECT {_AUDIT_COLUMNS} FROM audit ORDER BY id DESC LIMIT ?", (limit,)).fetchall()
        return [_audit_record(row) for row in rows]

    # --- alert governance ---------------------------------------------------------------------------------

    def overridden_findings(self, patient_key: str, finding_keys: list[str], since: dt.datetime) -> set[str]:
        """Which of ``finding_keys`` of this patient were on a card overridden at or after ``since``."""
        marks = ", ".join("?" * len(finding_keys))
        with self._errors():
            rows = self._connection().execute(
                "SELECT DISTINCT c.finding_key FROM card_issued c JOIN feedback f ON f.card_uuid = c.card_uuid "
                f"WHERE c.patient_key = ? AND c.finding_key IN ({marks}) AND f.outcome = 'overridden' "
                "AND f.outcome_timestamp >= ?", (patient_key, *finding_keys, _feedback_instant(since))).fetchall()
        return {row[0] for row in rows}

    def report_data(self, since: dt.datetime | None, until: dt.datetime | None) -> ReportData:
        """Audit records, shown cards and the feedback on them, recorded in [since, until)."""
        low = _timestamp(since) if since else ""
        high = _timestamp(until) if until else "9999"
        with self._errors():
            connection = self._connection()
            audit = connection.execute(f"SELECT {_AUDIT_COLUMNS} FROM audit WHERE recorded_at >= ? AND "
                                       "recorded_at < ? ORDER BY id", (low, high)).fetchall()
            issued = connection.execute("SELECT card_uuid, service_id, rule_id, issued_at FROM card_issued "
                                        "WHERE issued_at >= ? AND issued_at < ?", (low, high)).fetchall()
            feedback = connection.execute(
                "SELECT c.rule_id, f.card_uuid, f.outcome, f.override_reason, f.accepted_suggestions "
                "FROM feedback f JOIN card_issued c ON c.card_uuid = f.card_uuid "
                "WHERE c.issued_at >= ? AND c.issued_at < ?", (low, high)).fetchall()
        return ReportData(
            [_audit_record(row) for row in audit],
            [IssuedCardRow(row[0], row[1], row[2], dt.datetime.fromisoformat(row[3])) for row in issued],
            [FeedbackOnCard(row[0], row[1], row[2], json.loads(row[3]) if row[3] else None,
                            tuple(json.loads(row[4]))) for row in feedback])

    # --- end of alert governance --------------------------------------------------------------------------

    def check(self) -> None:
        """Raise StoreUnavailable unless the database can be read."""
        with self._errors():
            self._connection().execute("SELECT 1 FROM feedback LIMIT 1").fetchall()

    def describe(self) -> str:
        """The database file."""
        return f"SQLite {self.path}"

    def close(self) -> None:
        """Close this thread's connections (others close when their thread ends)."""
        for name in ("connection", "audit_connection"):
            connection = getattr(self._local, name, None)
            if connection is not None:
                connection.close()
                setattr(self._local, name, None)


def _insert_issued_cards(connection: sqlite3.Connection, record: AuditRecord) -> None:
    issued_at = _timestamp(record.recorded_at)
    connection.executemany(
        "INSERT OR IGNORE INTO card_issued (card_uuid, service_id, rule_id, patient_key, finding_key, issued_at) "
        "VALUES (?, ?, ?, ?, ?, ?)", [(card.card_uuid, record.service_id, card.rule_id, card.patient_key,
                                       card.finding_key, issued_at) for card in record.issued_cards])


def _audit_record(row: tuple[Any, ...]) -> AuditRecord:
    return AuditRecord(dt.datetime.fromisoformat(row[0]), row[1], row[2], row[3], row[4], row[5], row[6],
                       tuple(json.loads(row[7])), tuple(json.loads(row[8])), tuple(json.loads(row[9])),
                       row[10], row[11], row[12], tuple(json.loads(row[13])), row[14], row[15])


def _feedback_instant(moment: dt.datetime) -> str:
    # As feedback.py normalizes outcomeTimestamp, so text order is time order.
    return moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def _json_list(values: tuple[str, ...]) -> str:
    # Most records name no rule, card or suggestion: "[]" without json.dumps (about 13k instructions each).
    return json.dumps(list(values)) if values else "[]"


def _timestamp(moment: dt.datetime) -> str:
    # ISO 8601 UTC with a fixed width, so text order is time order.
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
