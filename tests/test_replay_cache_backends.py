"""The ``jti`` replay cache on both backends: an id is accepted once, by whichever process asks first."""

from __future__ import annotations

import multiprocessing
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from needlecheck.cds_hooks.postgres_replay_cache import PostgresReplayCache
from needlecheck.cds_hooks.replay_cache import ReplayCache, SqliteReplayCache, open_replay_cache
from needlecheck.cds_hooks.settings import Settings

ISSUER = "https://ehr.example.org/cds-client"


class Clock:
    """A clock the test moves."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


CacheFactory = Callable[..., ReplayCache]


@pytest.fixture(params=["sqlite", "postgres"])
def make_cache(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[CacheFactory]:
    """A factory of caches that share one database (as the instances of one deployment do)."""
    url = request.getfixturevalue("postgres_url") if request.param == "postgres" else None
    opened: list[PostgresReplayCache] = []

    def make(clock: Clock | None = None) -> ReplayCache:
        if url is None:
            return SqliteReplayCache(tmp_path / "replay-cache.sqlite3", clock or Clock())
        cache = PostgresReplayCache(url, clock or Clock())
        opened.append(cache)
        return cache

    yield make
    for cache in opened:
        cache.close()


def test_an_id_is_accepted_once_until_it_expires(make_cache: CacheFactory) -> None:
    clock = Clock()
    cache, other_instance = make_cache(clock), make_cache(clock)
    expires = clock.now + 300
    assert cache.first_use(ISSUER, "jti-1", expires) is True
    assert cache.first_use(ISSUER, "jti-1", expires) is False
    assert other_instance.first_use(ISSUER, "jti-1", expires) is False
    assert cache.first_use("https://other-ehr.example.org", "jti-1", expires) is True
    clock.now = expires + 1  # an expired token is refused by its exp anyway; its id may be reused
    assert other_instance.first_use(ISSUER, "jti-1", clock.now + 300) is True


def test_of_concurrent_uses_of_one_id_exactly_one_wins(make_cache: CacheFactory) -> None:
    caches = [make_cache() for _ in range(4)]
    results: list[bool] = []
    lock = threading.Lock()
    start = threading.Barrier(16)

    def use(cache: ReplayCache) -> None:
        start.wait()
        accepted = cache.first_use(ISSUER, "jti-raced", 1_800_000_300.0)
        with lock:
            results.append(accepted)

    threads = [threading.Thread(target=use, args=(caches[index % 4],)) for index in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(results) == [False] * 15 + [True]


def test_database_url_selects_postgresql(postgres_url: str, tmp_path: Path) -> None:
    cache = open_replay_cache(Settings(data_dir=tmp_path, database_url=postgres_url))
    assert isinstance(cache, PostgresReplayCache)
    cache.close()
    assert isinstance(open_replay_cache(Settings(data_dir=tmp_path, database_url=None)), SqliteReplayCache)



def _claim_in_child(cache: ReplayCache, start: Any, results: Any) -> None:
    start.wait()
    results.put([cache.first_use(ISSUER, f"jti-{n}", 1_800_000_300.0) for n in range(40)])


def test_processes_forked_after_the_cache_was_built_accept_each_id_once(make_cache: CacheFactory) -> None:
    """A gunicorn master that preloads the app builds the cache, then forks workers that use it. No process
    may use a connection of another: a PostgreSQL socket read by two processes hands one the other's answer
    (or leaves both waiting forever), SQLite's locks do not survive fork(). Each id is accepted once in all."""
    cache = make_cache()
    context = multiprocessing.get_context("fork")
    start, results = context.Barrier(3), context.Queue()
    children = [context.Process(target=_claim_in_child, args=(cache, start, results)) for _ in range(3)]
    for child in children:
        child.start()
    try:
        outcomes = [results.get(timeout=60) for _ in children]
    finally:
        for child in children:
            child.join(timeout=5)
            if child.is_alive():
                child.kill()
    assert [sum(column) for column in zip(*outcomes, strict=True)] == [1] * 40
    assert cache.first_use(ISSUER, "jti-0", 1_800_000_300.0) is False  # the builder sees the children's rows
