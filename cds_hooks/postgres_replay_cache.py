"""The ``jti`` replay cache in PostgreSQL, shared by every instance of a deployment with ``database_url``.

Same table and rule as ``SqliteReplayCache``: one row per (issuer, jti) until the token expires; an insert
``ON CONFLICT`` claims the id only if the row there has expired. PostgreSQL makes the second of two
concurrent claims wait for the first and then see its row, so exactly one of them succeeds.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from needlecheck.cds_hooks.postgres_store import ProcessPool, create_schema, transaction

PRUNE_INTERVAL_SECONDS = 60.0

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS seen_token (
        issuer TEXT NOT NULL,
        jti TEXT NOT NULL,
        expires_at DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (issuer, jti)
    )""",
    "CREATE INDEX IF NOT EXISTS seen_token_expiry ON seen_token (expires_at)",
)

_CLAIM = """
INSERT INTO seen_token (issuer, jti, expires_at) VALUES (%s, %s, %s)
ON CONFLICT (issuer, jti) DO UPDATE SET expires_at = excluded.expires_at WHERE seen_token.expires_at < %s
"""


class PostgresReplayCache:
    """Token ids in PostgreSQL's ``seen_token`` table, pruned of expired rows about once a minute per process."""

    def __init__(self, url: str, clock: Callable[[], float] = time.time, max_connections: int = 4,
                 timeout_seconds: float = 10.0) -> None:
        self._clock = clock
        create_schema(url, _SCHEMA, timeout_seconds)
        self._pool = ProcessPool(url, max_connections, timeout_seconds)  # opened on first use in each process
        self._prune_lock = threading.Lock()
        self._pruned_at = 0.0

    def first_use(self, issuer: str, jti: str, expires_at: float) -> bool:
        """See ``ReplayCache.first_use``; raises StoreUnavailable when the database cannot be reached."""
        now = self._clock()
        with transaction(self._pool) as connection:
            claimed = connection.execute(_CLAIM, (issuer, jti, expires_at, now)).rowcount == 1
        if self._due_for_pruning(now):
            with transaction(self._pool) as connection:
                connection.execute("DELETE FROM seen_token WHERE expires_at < %s", (now,))
        return claimed

    def _due_for_pruning(self, now: float) -> bool:
        with self._prune_lock:
            if now - self._pruned_at < PRUNE_INTERVAL_SECONDS:
                return False
            self._pruned_at = now
            return True

    def close(self) -> None:
        """Close the pool's connections."""
        self._pool.close()
