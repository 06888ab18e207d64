"""``load_all`` reads every file the service needs, a missing one is an error naming it, and the app the gunicorn
master builds holds no database connection and no thread when the workers fork."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from needlecheck.cds_hooks.app import create_app
from needlecheck.cds_hooks.postgres_replay_cache import PostgresReplayCache
from needlecheck.cds_hooks.postgres_store import PostgresStore
from needlecheck.cds_hooks.settings import Settings
from needlecheck.cds_hooks.sqlite_store import SqliteStore
from needlecheck.cds_hooks.trust_settings import TrustedClient
from needlecheck.mappings.cpt import load_cpt_codes
from needlecheck.mappings.errors import MappingError
from needlecheck.mappings.loading import TABLE_LOADERS, load_all
from needlecheck.mappings.sources import SOURCES_DIR, load_source_directory
from needlecheck.mappings.tables import DATA_DIR
from tests.support.client_tokens import ec_key

BASE = "https://cds.example.org"
SHIPPED = sorted([*DATA_DIR.glob("*.csv"), *SOURCES_DIR.glob("*.yaml")])


@pytest.fixture
def opened_files(monkeypatch: pytest.MonkeyPatch) -> Iterator[set[Path]]:
    """The files opened through ``Path.open`` (``read_text`` included) while the test runs, with every table
    loader's cache emptied first so that each reads its file again."""
    opened: set[Path] = set()
    original = Path.open

    def recording_open(self: Path, *args: Any, **kwargs: Any) -> Any:
        opened.add(self.resolve())
        return original(self, *args, **kwargs)

    for loader in TABLE_LOADERS:
        loader.cache_clear()  # type: ignore[attr-defined]
    monkeypatch.setattr(Path, "open", recording_open)
    yield opened
    monkeypatch.undo()
    for loader in TABLE_LOADERS:  # reloaded from the real files, outside the patch
        loader.cache_clear()  # type: ignore[attr-defined]
        loader()


def test_load_all_reads_every_table_and_sources_file_shipped(opened_files: set[Path]) -> None:
    assert len(SHIPPED) > 20
    load_all(None)
    assert [path.name for path in SHIPPED if path.resolve() not in opened_files] == []


def test_a_missing_sources_folder_is_an_error_not_an_empty_set(tmp_path: Path) -> None:
    with pytest.raises(MappingError, match="policy_sources: folder is missing"):
        load_source_directory(tmp_path / "policy_sources")
    (tmp_path / "policy_sources").mkdir()
    with pytest.raises(MappingError, match=r"holds no \*\.yaml"):
        load_source_directory(tmp_path / "policy_sources")


def test_a_missing_table_is_named_with_its_path(tmp_path: Path) -> None:
    with pytest.raises(MappingError) as raised:
        load_cpt_codes(tmp_path / "cpt_codes.csv")
    assert str(raised.value) == f"{tmp_path / 'cpt_codes.csv'}: cannot be read: No such file or directory"


def test_a_table_that_is_not_utf8_names_the_row(tmp_path: Path) -> None:
    table = tmp_path / "cpt_codes.csv"
    text = (DATA_DIR / "cpt_codes.csv").read_bytes()
    table.write_bytes(text.replace(b"\n", b"\n\xff\xfe", 1))
    with pytest.raises(MappingError, match=r"cpt_codes\.csv, row 2: is not UTF-8 text \(byte 0xff\)"):
        load_cpt_codes(table)


def test_the_app_holds_no_sqlite_connection_nor_thread_once_built(tmp_path: Path) -> None:
    # What the gunicorn master builds (preload_app) is shared by forked workers: an SQLite connection or a
    # thread must not cross the fork. The schema is there, so no worker creates it.
    threads = threading.active_count()
    app = create_app(Settings(data_dir=tmp_path / "data"))
    store = app.extensions["needlecheck.store"]

    assert isinstance(store, SqliteStore) and getattr(store._local, "connection", None) is None
    assert threading.active_count() == threads
    assert store.count_feedback() == 0  # a first use connects, in the thread that uses it
    store.close()


def test_the_app_holds_no_postgres_pool_once_built(tmp_path: Path, postgres_url: str) -> None:
    # With trusted clients, the JWT replay cache lives in PostgreSQL too: neither opens its pool in the master.
    threads = threading.active_count()
    app = create_app(Settings(data_dir=tmp_path / "data", database_url=postgres_url, public_base_url=BASE,
                              trusted_clients=(TrustedClient(BASE, keys=(ec_key("k").public_jwk,)),)))
    store = app.extensions["needlecheck.store"]
    replay_cache = app.extensions["needlecheck.client_auth"]._replay_cache

    assert isinstance(store, PostgresStore) and store._pool._pool is None
    assert isinstance(replay_cache, PostgresReplayCache) and replay_cache._pool._pool is None
    assert threading.active_count() == threads
    store.check()  # the pool opens on first use, in this process
    assert replay_cache.first_use(BASE, "token-1", 2e9) and not replay_cache.first_use(BASE, "token-1", 2e9)
    assert store._pool._pool is not None and replay_cache._pool._pool is not None
    store.close()
    replay_cache.close()
