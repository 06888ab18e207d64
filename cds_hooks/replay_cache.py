"""The ``jti`` replay cache: a client token's id is accepted once, by any worker of any instance sharing the store.

``ReplayCache`` is the interface; ``SqliteReplayCache`` keeps the ids in a SQLite file in the data directory,
which every gunicorn worker on one machine shares. Deployments with several machines need a shared database:
a PostgreSQL implementation of the same Protocol plugs in through ``open_replay_cache``.

SQLite connections must never cross a ``fork()``: SQLite keeps each process's view of the file's locks in
process memory, which a child inherits while the POSIX locks themselves stay with the parent. A child that
inherits an open connection's state takes no real locks, so when the parent later closes that connection it
believes it is the last user, checkpoints and deletes the WAL the child still writes to, and processes
started afterwards write to a new WAL: two copies of the table, and every token id accepted once in each.
So the constructor closes what it opens (a gunicorn master may build the cache before forking its workers),
and a cache whose connections were opened in another process refuses to work rather than accept a replay.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from needlecheck.cds_hooks.settings import Settings

PRUNE_INTERVAL_SECONDS = 60.0


class ReplayCache(Protocol):
    """Remembers the token ids it has seen until they expire."""

    def first_use(self, issuer: str, jti: str, expires_at: float) -> bool:
        """Record ``jti`` of ``issuer`` until ``expires_at`` (Unix time); False if it is already recorded and
        not yet expired. Atomic across processes: of two concurrent calls with one id, exactly one gets True.
        Raises StoreUnavailable when the store cannot answer (never True on doubt)."""
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


def _unavailable(reason: str) -> Exception:
    # Imported here: store imports audit, which imports client_auth, which imports this module.
    from needlecheck.cds_hooks.store import StoreUnavailable

    return StoreUnavailable(reason)


@contextmanager
def _sqlite_errors() -> Iterator[None]:
    """SQLite's failures (busy past the timeout, unreadable file) as StoreUnavailable: a 503, never an accept."""
    try:
        yield
    except sqlite3.Error as error:
        raise _unavailable(f"SQLite replay cache: {error}") from error


class SqliteReplayCache:
    """Token ids in a SQLite table (``seen_token``: issuer, jti, expiry), pruned of expired rows once a minute.

    It may be built before worker processes are forked; once ``first_use`` has run in a process, that process's
    forked children cannot use it (they get StoreUnavailable) and must build their own.
    """

    def __init__(self, path: Path, clock: Callable[[], float] = time.time) -> None:
        self.path = path
        self._clock = clock
        self._pruned_at = 0.0
        self._local = threading.local()
        self._connected_in: int | None = None  # the process whose threads hold this cache's connections
        path.parent.mkdir(parents=True, exist_ok=True)
        # Closed here: ``with connection`` only commits, and sqlite3's statement cache makes a reference cycle,
        # so an unclosed connection stays open until a garbage collection, possibly after a fork (see above).
        with _sqlite_errors(), closing(self._connect()) as connection:
            connection.execute("PRAGMA journal_mode=WAL")
            connection.executescript(_SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        connection = sqlite3.connect(self.path, timeout=10.0, isolation_level=None)
        connection.execute("PRAGMA busy_timeout=10000")
        connection.execute("PRAGMA synchronous=NORMAL")
        return connection

    def _connection(self) -> sqlite3.Connection:
        # One connection per thread: gunicorn's gthread workers serve requests on several threads.
        # No lock: threads of one process can only race to store the same pid.
        if self._connected_in is None:
            self._connected_in = os.getpid()
        elif self._connected_in != os.getpid():
            # Inherited through fork() from a process whose connections may still be open: this process's
            # locks on the file would not be real, so no answer it gives could be trusted.
            raise _unavailable("SQLite replay cache was opened in another process before this one forked")
        connection: sqlite3.Connection | None = getattr(self._local, "connection", None)
        if connection is None:
            connection = self._connect()
            self._local.connection = connection
        return connection

    def first_use(self, issuer: str, jti: str, expires_at: float) -> bool:
        """See ``ReplayCache.first_use``."""
        now = self._clock()
        with _sqlite_errors():
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
