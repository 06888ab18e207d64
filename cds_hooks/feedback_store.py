"""Where feedback is kept: an SQLite file in the data directory, written idempotently.

A client may send the same feedback again (a retry, or a second call for the same card); the unique key
(service, card, outcome, timestamp) makes the repeat a no-op instead of a second row.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path

from cds_hooks.feedback import FeedbackItem

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
)
"""


class FeedbackStore:
    """Feedback rows in one SQLite database; safe to share between threads and worker processes."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._local = threading.local()
        with self._connection() as connection:
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute(_SCHEMA)

    def _connection(self) -> sqlite3.Connection:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            # WAL lets readers and the writer of several gunicorn workers work side by side; the
            # busy timeout makes a writer wait for the lock instead of failing.
            connection = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            connection.execute("PRAGMA busy_timeout=30000")
            self._local.connection = connection
        return connection

    def save(self, service_id: str, items: list[FeedbackItem]) -> int:
        """Store every item in one transaction; returns how many were new."""
        connection = self._connection()
        rows = [(service_id, item.card, item.outcome, item.outcome_timestamp,
                 json.dumps(list(item.accepted_suggestions)), item.override_reason) for item in items]
        connection.execute("BEGIN IMMEDIATE")
        try:
            before = connection.total_changes
            connection.executemany(
                "INSERT OR IGNORE INTO feedback (service_id, card_uuid, outcome, outcome_timestamp, "
                "accepted_suggestions, override_reason) VALUES (?, ?, ?, ?, ?, ?)", rows)
            stored = connection.total_changes - before
            connection.execute("COMMIT")
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        return stored

    def count(self, service_id: str | None = None) -> int:
        """How many feedback rows there are (for one service, or in all)."""
        query, args = "SELECT COUNT(*) FROM feedback", ()
        if service_id is not None:
            query, args = query + " WHERE service_id = ?", (service_id,)
        return int(self._connection().execute(query, args).fetchone()[0])
