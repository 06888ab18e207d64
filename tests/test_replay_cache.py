"""The jti replay cache: once per token id, across processes sharing the file, forgotten after expiry."""

from __future__ import annotations

import gc
import multiprocessing
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from needlecheck.cds_hooks.replay_cache import ReplayCache, SqliteReplayCache
from needlecheck.cds_hooks.store import StoreUnavailable

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
    """Four processes forked from the one that built the cache, as gunicorn forks workers from a master that
    may build the app first. A garbage collection in the parent between two forks (any allocation in a busy
    parent may run one) must change nothing: when the constructor left its connection to the collector, the
    collection closed it, deleted the WAL the first children wrote to, and the later children started a
    second WAL, so every id was accepted twice."""
    path = tmp_path / "replay.sqlite3"
    context = multiprocessing.get_context("fork")
    start, results = context.Barrier(4), context.Queue()
    workers = [context.Process(target=_claim, args=(str(path), start, results)) for _ in range(4)]
    gc.disable()  # collect exactly where the test says, not at a moment of the allocator's choosing
    try:
        SqliteReplayCache(path)
        for index, worker in enumerate(workers):
            worker.start()
            if index == 1:
                gc.collect()
    finally:
        gc.enable()
    outcomes = [results.get(timeout=60) for _ in workers]
    for worker in workers:
        worker.join(timeout=30)
    # For every id, exactly one of the four processes got it.
    assert [sum(column) for column in zip(*outcomes, strict=True)] == [1] * 50


def _use_inherited(cache: SqliteReplayCache, results: Any) -> None:
    try:
        results.put(cache.first_use(ISS, "in-the-child", 4e9))
    except StoreUnavailable as error:
        results.put(str(error))


def test_a_cache_used_before_a_fork_refuses_to_answer_in_the_child(tmp_path: Path) -> None:
    """A child forked from a process with open connections cannot lock the file for real: it must fail, not
    answer (an accept it gives could be a replay)."""
    cache = SqliteReplayCache(tmp_path / "replay.sqlite3")
    assert cache.first_use(ISS, "in-the-parent", 4e9)
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    child = context.Process(target=_use_inherited, args=(cache, results))
    child.start()
    answer = results.get(timeout=60)
    child.join(timeout=30)
    assert answer == "SQLite replay cache was opened in another process before this one forked"
    assert not cache.first_use(ISS, "in-the-parent", 4e9)
    assert cache.first_use(ISS, "in-the-child", 4e9)  # the child stored nothing


def test_an_unusable_file_is_store_unavailable_not_an_accept(tmp_path: Path) -> None:
    with pytest.raises(StoreUnavailable, match="unable to open database file"):
        SqliteReplayCache(tmp_path)  # a directory, not a database file
