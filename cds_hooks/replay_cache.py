"""The ``jti`` replay cache: a client token's id is accepted once, by any worker of any instance sharing the store.

``ReplayCache`` is the interface; ``SqliteReplayCache`` keeps the ids in a SQLite file in the data directory,
which every gunicorn worker on one machine shares. Deployments with several machines need a shared database:
a PostgreSQL implementation of the same Protocol plugs in through ``open_replay_cache``.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from needlecheck.cds_hooks.settings import Settings

PRUNE_INTERVAL_SECONDS = 60.0


class ReplayCache(Protocol):
    """Remembers the token ids it has seen until they expire."""

    def first_use(self, issuer: str, jti: str, expires_at: float) -> bool:
        """Record ``jti`` of ``issuer`` until ``expires_at`` (Unix time); False if it is already recorded and
        not yet expired. Atomic across processes: of two concurrent calls with one id, exactly one gets True."""
        ...


_SCHEMA = """
CREATE TABLE IF NOT EXISTS seen_token (
    issuer TEXT NOT NULL,
    jti TEXT NOT NULL,
    expires_at REAL NOT NULL,
    PRIMARY KEY (issuer, jti)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS seen_token_expiry ON seen_token (expires_at);
"""

# An expired row of the same id may be reused: its token can no longer be accepted anyway.
_CLAIM = """
INSERT INTO seen_token (issuer, jti, expires_at) VALUES (?, ?, ?)
ON CONFLICT (issuer, jti) DO UPDATE SET expires_at = excluded.expires_at WHERE seen_token.expires_at < ?
"""


class SqliteReplayCache:
    """Token ids in a SQLite table (``seen_token``: issuer, jti, expiry), pruned of expired rows once a minute."""

    def __init__(self, path: Path, clock: Callable[[], float] = time.time) -> None:
        self.path = path
        self._clock = clock
        self._pruned_at = 0.0
        self._local = threading.local()
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as connection:
            connection.execute("PRAGMA journal_mode=WAL")
            connection.executescript(_SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        connection = sqlite3.connect(self.path, timeout=10.0, isolation_level=None)
        connection.execute("PRAGMA busy_timeout=10000")
        connection.execute("PRAGMA synchronous=NORMAL")
        return connection

    def _connection(self) -> sqlite3.Connection:
        # One connection per thread: gunicorn's gthread workers serve requests on several threads.
        connection: sqlite3.Connection | None = getattr(self._local, "connection", None)
        if connection is None:
            connection = self._connect()
            self._local.connection = connection
        return connection

    def first_use(self, issuer: str, jti: str, expires_at: float) -> bool:
        """See ``ReplayCache.first_use``."""
        now = self._clock()
        connection = self._connection()
        claimed = connection.execute(_CLAIM, (issuer, jti, expires_at, now)).rowcount == 1
        if now - self._pruned_at >= PRUNE_INTERVAL_SECONDS:
            self._pruned_at = now
            connection.execute("DELETE FROM seen_token WHERE expires_at < ?", (now,))
        return claimed


def open_replay_cache(settings: Settings) -> ReplayCache:
    """The replay cache the settings call for: PostgreSQL with ``database_url``, else SQLite in the data directory."""
    if settings.database_url:
        from needlecheck.cds_hooks.postgres_replay_cache import PostgresReplayCache

        return PostgresReplayCache(settings.database_url)
    return SqliteReplayCache(settings.data_dir / "replay-cache.sqlite3")
