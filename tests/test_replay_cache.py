"""The jti replay cache: once per token id, across processes sharing the file, forgotten after expiry."""

from __future__ import annotations

import multiprocessing
import sqlite3
from pathlib import Path
from typing import Any

from needlecheck.cds_hooks.replay_cache import ReplayCache, SqliteReplayCache

ISS = "https://ehr.example.org"


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_a_token_id_is_accepted_once_per_issuer(tmp_path: Path) -> None:
    cache: ReplayCache = SqliteReplayCache(tmp_path / "replay.sqlite3", clock=Clock(1000.0))
    assert cache.first_use(ISS, "jti-1", 1300.0)
    assert not cache.first_use(ISS, "jti-1", 1300.0)
    assert cache.first_use("https://other.example.org", "jti-1", 1300.0)


def test_an_expired_id_is_forgotten_and_pruned(tmp_path: Path) -> None:
    clock = Clock(1000.0)
    path = tmp_path / "replay.sqlite3"
    cache = SqliteReplayCache(path, clock=clock)
    assert cache.first_use(ISS, "old", 1100.0)
    clock.now = 1101.0
    assert cache.first_use(ISS, "old", 1400.0)  # the earlier token with this id can no longer be accepted
    assert not cache.first_use(ISS, "old", 1400.0)
    assert cache.first_use(ISS, "short", 1150.0)
    clock.now = 1200.0  # more than a minute after the last prune
    assert cache.first_use(ISS, "new", 1500.0)
    with sqlite3.connect(path) as database:
        rows = sorted(jti for (jti,) in database.execute("SELECT jti FROM seen_token"))
    assert rows == ["new", "old"]


def _claim(path: str, start: Any, results: Any) -> None:
    cache = SqliteReplayCache(Path(path))
    start.wait()
    results.put([cache.first_use(ISS, f"jti-{n}", 4e9) for n in range(50)])


def test_processes_sharing_the_file_accept_each_id_exactly_once(tmp_path: Path) -> None:
    path = tmp_path / "replay.sqlite3"
    SqliteReplayCache(path)
    context = multiprocessing.get_context("fork")
    start, results = context.Barrier(4), context.Queue()
    workers = [context.Process(target=_claim, args=(str(path), start, results)) for _ in range(4)]
    for worker in workers:
        worker.start()
    outcomes = [results.get(timeout=60) for _ in workers]
    for worker in workers:
        worker.join(timeout=30)
    # For every id, exactly one of the four processes got it.
    assert [sum(column) for column in zip(*outcomes, strict=True)] == [1] * 50
