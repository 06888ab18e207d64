"""The PostgreSQL backend (psycopg 3 with a connection pool), for several instances behind a load balancer.

The schema is created when a store is opened, over a connection of its own (``needlecheck serve`` does it once,
in the gunicorn master); each process then opens its own pool on first use, since connections and the pool's
threads must not cross a fork. Feedback uses the same unique key as SQLite, with
``ON CONFLICT DO NOTHING``: of two instances storing the same item at once, one inserts and the other
waits for it and then stores nothing. Items of one batch are inserted in key order, so two batches that
share items always lock them in the same order and cannot deadlock.
"""

from __future__ import annotations

import datetime as dt
import os
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import ConnectionPool, PoolTimeout

from needlecheck.cds_hooks.audit import AuditRecord
from needlecheck.cds_hooks.feedback import FeedbackItem
from needlecheck.cds_hooks.governance_data import FeedbackOnCard, IssuedCardRow, ReportData
from needlecheck.cds_hooks.store import StoreUnavailable

# Any fixed number: workers starting together create the schema one at a time under this lock.
_SCHEMA_LOCK = 7_113_205_605

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS feedback (
        id BIGSERIAL PRIMARY KEY,
        service_id TEXT NOT NULL,
        card_uuid TEXT NOT NULL,
        outcome TEXT NOT NULL,
        outcome_timestamp TEXT NOT NULL,
        accepted_suggestions TEXT[] NOT NULL,
        override_reason JSONB,
        received_at TIMESTAMPTZ NOT NULL DEFAULT now(),
        UNIQUE (service_id, card_uuid, outcome, outcome_timestamp)
    )""",
    """CREATE TABLE IF NOT EXISTS audit (
        id BIGSERIAL PRIMARY KEY,
        recorded_at TIMESTAMPTZ NOT NULL,
        service_id TEXT NOT NULL,
        hook TEXT,
        hook_instance TEXT,
        client_id TEXT NOT NULL,
        http_status INTEGER NOT NULL,
        problem TEXT,
        rule_ids TEXT[] NOT NULL,
        card_uuids TEXT[] NOT NULL,
        suggestion_uuids TEXT[] NOT NULL,
        total_ms DOUBLE PRECISION,
        fhir_ms DOUBLE PRECISION,
        fhir_requests INTEGER
    )""",
    "CREATE INDEX IF NOT EXISTS audit_recorded_at ON audit (recorded_at)",
    "CREATE INDEX IF NOT EXISTS audit_hook_instance ON audit (hook_instance)",
)

_AUDIT_COLUMNS = ("recorded_at, service_id, hook, hook_instance, client_id, http_status, problem, rule_ids, "
                  "card_uuids, suggestion_uuids, total_ms, fhir_ms, fhir_requests, "
                  "suppressed_rule_ids, prefetch_provided, prefetch_keys")

# --- Alert governance (cds_hooks/suppression.py, cds_hooks/governance_report.py) -------------------------
# The cards shown, by uuid, with their rule and the keyed hashes of patient and finding; and the audit
# columns added for governance (databases created before them gain them at start-up).
_GOVERNANCE_SCHEMA = (
    "ALTER TABLE audit ADD COLUMN IF NOT EXISTS suppressed_rule_ids TEXT[] NOT NULL DEFAULT '{}'",
    "ALTER TABLE audit ADD COLUMN IF NOT EXISTS prefetch_provided INTEGER",
    "ALTER TABLE audit ADD COLUMN IF NOT EXISTS prefetch_keys INTEGER",
    """CREATE TABLE IF NOT EXISTS card_issued (
        card_uuid TEXT PRIMARY KEY,
        service_id TEXT NOT NULL,
        rule_id TEXT NOT NULL,
        patient_key TEXT NOT NULL,
        finding_key TEXT,
        issued_at TIMESTAMPTZ NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS card_issued_patient ON card_issued (patient_key, finding_key)",
    "CREATE INDEX IF NOT EXISTS card_issued_at ON card_issued (issued_at)",
    "CREATE INDEX IF NOT EXISTS feedback_card ON feedback (card_uuid)",
)
# --- end of alert governance -------------------------------------------------------------------------------


class PostgresStore:
    """Feedback and audit rows in PostgreSQL, through a pool of connections of this process."""

    def __init__(self, url: str, max_connections: int = 8, timeout_seconds: float = 10.0) -> None:
        """Create the schema now (StoreUnavailable when the database cannot be reached); the pool opens on first
        use in each process."""
        create_schema(url, _SCHEMA + _GOVERNANCE_SCHEMA, timeout_seconds)
        self._pool = ProcessPool(url, max_connections, timeout_seconds)
        self._where = describe_url(url)

    def _transaction(self) -> AbstractContextManager[psycopg.Connection]:
        return transaction(self._pool)

    def save_feedback(self, service_id: str, items: list[FeedbackItem]) -> int:
        """Store every item in one transaction; returns how many were new."""
        stored = 0
        with self._transaction() as connection:
            for item in sorted(items, key=lambda item: item.identity):
                cursor = connection.execute(
                    "INSERT INTO feedback (service_id, card_uuid, outcome, outcome_timestamp, accepted_suggestions, "
                    "override_reason) VALUES (%s, %s, %s, %s, %s, %s::jsonb) "
                    "ON CONFLICT (service_id, card_uuid, outcome, outcome_timestamp) DO NOTHING",
                    (service_id, item.card, item.outcome, item.outcome_timestamp, list(item.accepted_suggestions),
                     item.override_reason))
                stored += cursor.rowcount
        return stored

    def count_feedback(self, service_id: str | None = None) -> int:
        """How many feedback rows there are (for one service, or in all)."""
        with self._transaction() as connection:
            if service_id is None:
                row = connection.execute("SELECT COUNT(*) FROM feedback").fetchone()
            else:
                row = connection.execute("SELECT COUNT(*) FROM feedback WHERE service_id = %s",
                                         (service_id,)).fetchone()
        return int(row[0]) if row else 0

    def record_invocation(self, record: AuditRecord) -> None:
        """Append one audit record, and the cards it shows in the same transaction."""
        self.record_invocations([record])

    def record_invocations(self, records: list[AuditRecord]) -> None:
        """Append audit records and the cards they show in one transaction, committed without waiting for the
        WAL flush (``synchronous_commit = off``, this transaction only): a server crash can lose the last
        fraction of a second of audit records, never corrupt them; feedback keeps the synchronous commit."""
        cards = sorted(((card.card_uuid, record.service_id, card.rule_id, card.patient_key, card.finding_key,
                         record.recorded_at) for record in records for card in record.issued_cards),
                       key=lambda row: row[0])  # one lock order for every batch: no deadlock between workers
        with self._transaction() as connection, connection.cursor() as cursor:
            cursor.execute("SET LOCAL synchronous_commit TO OFF")
            cursor.executemany(
                f"INSERT INTO audit ({_AUDIT_COLUMNS}) VALUES ({', '.join(['%s'] * 16)})",
                [(record.recorded_at, record.service_id, record.hook, record.hook_instance, record.client_id,
                  record.http_status, record.problem, list(record.rule_ids), list(record.card_uuids),
                  list(record.suggestion_uuids), record.total_ms, record.fhir_ms, record.fhir_requests,
                  list(record.suppressed_rule_ids), record.prefetch_provided, record.prefetch_keys)
                 for record in records])
            if cards:
                cursor.executemany(
                    "INSERT INTO card_issued (card_uuid, service_id, rule_id, patient_key, finding_key, issued_at) "
                    "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (card_uuid) DO NOTHING", cards)

    def invocations(self, limit: int = 100) -> list[AuditRecord]:
        """The latest audit records, newest first."""
        with self._transaction() as connection:
            rows = connection.execute(f"SELECT {_AUDIT_COLUMNS} FROM audit ORDER BY id DESC LIMIT %s",
                                      (limit,)).fetchall()
        return [_audit_record(row) for row in rows]

    # --- alert governance ---------------------------------------------------------------------------------

    def overridden_findings(self, patient_key: str, finding_keys: list[str], since: dt.datetime) -> set[str]:
        """Which of ``finding_keys`` of this patient were on a card overridden at or after ``since``."""
        with self._transaction() as connection:
            rows = connection.execute(
                "SELECT DISTINCT c.finding_key FROM card_issued c JOIN feedback f ON f.card_uuid = c.card_uuid "
                "WHERE c.patient_key = %s AND c.finding_key = ANY(%s) AND f.outcome = 'overridden' "
                "AND f.outcome_timestamp >= %s",
                (patient_key, finding_keys, since.astimezone(dt.UTC).isoformat().replace("+00:00", "Z"))).fetchall()
        return {row[0] for row in rows}

    def report_data(self, since: dt.datetime | None, until: dt.datetime | None) -> ReportData:
        """Audit records, shown cards and the feedback on them, recorded in [since, until)."""
        low = since or dt.datetime(1, 1, 1, tzinfo=dt.UTC)
        high = until or dt.datetime(9999, 1, 1, tzinfo=dt.UTC)
        with self._transaction() as connection:
            audit = connection.execute(f"SELECT {_AUDIT_COLUMNS} FROM audit WHERE recorded_at >= %s AND "
                                       "recorded_at < %s ORDER BY id", (low, high)).fetchall()
            issued = connection.execute("SELECT card_uuid, service_id, rule_id, issued_at FROM card_issued "
                                        "WHERE issued_at >= %s AND issued_at < %s", (low, high)).fetchall()
            feedback = connection.execute(
                "SELECT c.rule_id, f.card_uuid, f.outcome, f.override_reason, f.accepted_suggestions "
                "FROM feedback f JOIN card_issued c ON c.card_uuid = f.card_uuid "
                "WHERE c.issued_at >= %s AND c.issued_at < %s", (low, high)).fetchall()
        return ReportData([_audit_record(row) for row in audit],
                          [IssuedCardRow(row[0], row[1], row[2], row[3].astimezone(dt.UTC)) for row in issued],
                          [FeedbackOnCard(row[0], row[1], row[2], row[3], tuple(row[4])) for row in feedback])

    # --- end of alert governance --------------------------------------------------------------------------

    def check(self) -> None:
        """Raise StoreUnavailable unless the database answers."""
        with self._transaction() as connection:
            connection.execute("SELECT 1").fetchone()

    def describe(self) -> str:
        """Host, port and database, without user or password."""
        return self._where

    def close(self) -> None:
        """Close the pool's connections."""
        self._pool.close()


def _audit_record(row: tuple[Any, ...]) -> AuditRecord:
    return AuditRecord(row[0].astimezone(dt.UTC), row[1], row[2], row[3], row[4], row[5], row[6], tuple(row[7]),
                       tuple(row[8]), tuple(row[9]), row[10], row[11], row[12], tuple(row[13]), row[14], row[15])


def open_pool(url: str, max_connections: int, timeout_seconds: float) -> ConnectionPool:
    """An open pool of this process's connections to ``url``; StoreUnavailable when none can be made in time."""
    pool = ConnectionPool(url, min_size=1, max_size=max_connections, open=False, timeout=timeout_seconds,
                          kwargs={"connect_timeout": max(1, int(timeout_seconds))},
                          check=ConnectionPool.check_connection, name="needlecheck")
    try:
        pool.open(wait=True, timeout=timeout_seconds)
    except PoolTimeout as error:
        pool.close()
        raise StoreUnavailable(f"cannot connect to {describe_url(url)}") from error
    return pool


class ProcessPool:
    """A pool of this process's connections to ``url``, opened on first use in each process.

    A forked worker never touches a pool its parent opened (its connections and threads belong to the parent):
    it opens its own. ``needlecheck serve`` opens none in the gunicorn master anyway.
    """

    def __init__(self, url: str, max_connections: int, timeout_seconds: float) -> None:
        self._url = url
        self._max_connections = max_connections
        self._timeout_seconds = timeout_seconds
        self._lock = threading.Lock()
        self._pool: ConnectionPool | None = None
        self._owner_pid: int | None = None
        self._inherited: list[ConnectionPool] = []

    def get(self) -> ConnectionPool:
        """This process's pool, opened now if need be; StoreUnavailable when no connection can be made."""
        pid = os.getpid()
        if self._owner_pid != pid:
            with self._lock:
                if self._owner_pid != pid:
                    if self._pool is not None:
                        # Kept, never closed nor collected: closing would end the parent's sessions.
                        self._inherited.append(self._pool)
                    self._pool = open_pool(self._url, self._max_connections, self._timeout_seconds)
                    self._owner_pid = pid
        assert self._pool is not None
        return self._pool

    def close(self) -> None:
        """Close this process's pool, if it opened one; a later use opens a new one."""
        with self._lock:
            if self._pool is not None and self._owner_pid == os.getpid():
                self._pool.close()
                self._pool, self._owner_pid = None, None


def create_schema(url: str, statements: tuple[str, ...], timeout_seconds: float = 10.0) -> None:
    """Run idempotent DDL over a connection of its own; instances starting together take turns under an advisory
    lock. StoreUnavailable, naming the database but never the URL, when it cannot be reached or refuses."""
    try:
        with psycopg.connect(url, connect_timeout=max(1, int(timeout_seconds))) as connection:
            connection.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
            for statement in statements:
                connection.execute(statement)
    except psycopg.OperationalError as error:
        # The message can quote the connection string; keep the class name only.
        raise StoreUnavailable(f"cannot connect to {describe_url(url)} ({type(error).__name__})") from error
    except psycopg.Error as error:
        # An answer of the server (no privilege to create a table, ...): its primary message quotes no secret.
        reason = error.diag.message_primary or type(error).__name__
        raise StoreUnavailable(f"cannot create the tables in {describe_url(url)}: {reason}") from error


@contextmanager
def transaction(pool: ConnectionPool | ProcessPool) -> Iterator[psycopg.Connection]:
    """A pooled connection in a transaction, committed when the block ends without an error."""
    try:
        if isinstance(pool, ProcessPool):
            pool = pool.get()
        with pool.connection() as connection:
            yield connection
    except PoolTimeout as error:
        raise StoreUnavailable("no free database connection") from error
    except psycopg.OperationalError as error:
        # The message can quote the connection string; keep the class name only.
        raise StoreUnavailable(f"PostgreSQL: {type(error).__name__}") from error


def describe_url(url: str) -> str:
    """Database, host and port of a PostgreSQL URL, without user or password."""
    try:
        parts = conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "PostgreSQL (unparsable database_url)"
    host = parts.get("host") or "local socket"
    return f"PostgreSQL {parts.get('dbname') or '(default database)'} on {host}:{parts.get('port') or 5432}"
