"""The ``jti`` replay cache in PostgreSQL, shared by every instance of a deployment with ``database_url``.

Same table and rule as ``SqliteReplayCache``: one row per (issuer, jti) until the token expires; an insert
``ON CONFLICT`` claims the id only if the row there has expired. PostgreSQL makes the second of two
concurrent claims wait for the first and then see its row, so exactly one of them succeeds.

Each process claims through a pool of its own. A gunicorn master that builds the app before forking hands
its workers the pool's open sockets; two processes reading one socket take each other's answers (a refused
replay could read another's "claimed") or both wait forever. So a process that finds the pool was opened
by another opens its own, and never closes the inherited one (that would end the other process's sessions).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable

from psycopg_pool import ConnectionPool

from needlecheck.cds_hooks.postgres_store import create_schema, open_pool, transaction

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
        self._pool_settings = (url, max_connections, timeout_seconds)
        self._pool = open_pool(*self._pool_settings)
        self._pool_pid = os.getpid()
        self._inherited_pools: list[ConnectionPool] = []
        self._pool_lock = threading.Lock()
        self._prune_lock = threading.Lock()
        self._pruned_at = 0.0
        create_schema(self._pool, _SCHEMA)

    def _process_pool(self) -> ConnectionPool:
        """This process's pool, opened on first use after a fork (see the module's docstring)."""
        if self._pool_pid != os.getpid():
            with self._pool_lock:
                if self._pool_pid != os.getpid():
                    # Kept referenced, never closed: closing would send the other process's sessions a goodbye.
                    self._inherited_pools.append(self._pool)
                    self._pool = open_pool(*self._pool_settings)
                    self._pool_pid = os.getpid()
        return self._pool

    def first_use(self, issuer: str, jti: str, expires_at: float) -> bool:
        """See ``ReplayCache.first_use``; raises StoreUnavailable when the database cannot be reached."""
        now = self._clock()
        pool = self._process_pool()
        with transaction(pool) as connection:
            claimed = connection.execute(_CLAIM, (issuer, jti, expires_at, now)).rowcount == 1
        if self._due_for_pruning(now):
            with transaction(pool) as connection:
                connection.execute("DELETE FROM seen_token WHERE expires_at < %s", (now,))
        return claimed

    def _due_for_pruning(self, now: float) -> bool:
        with self._prune_lock:
            if now - self._pruned_at < PRUNE_INTERVAL_SECONDS:
                return False
            self._pruned_at = now
            return True

    def close(self) -> None:
        """Close this process's pool (a pool inherited through fork belongs to its parent)."""
        if self._pool_pid == os.getpid():
            self._pool.close()
