"""pytest fixtures for a real PostgreSQL that the suite starts itself.

Import them into ``tests/conftest.py``::

    from tests.support.fixtures_postgres import postgres_server, postgres_url  # noqa: F401

* ``postgres_server`` (session scope): one server for the whole run, stopped at the end. When PostgreSQL
  cannot be started the tests that use it fail, they are never skipped: CI must prove the PostgreSQL path.
* ``postgres_url`` (function scope): the URL of a new, empty database on that server.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.postgres_server import PostgresServer, PostgresUnavailable, start_postgres

__all__ = ["postgres_server", "postgres_url"]


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A PostgreSQL server in a temporary directory for the whole run."""
    try:
        server = start_postgres()
    except PostgresUnavailable as error:
        pytest.fail(f"PostgreSQL could not be started: {error}", pytrace=False)
    yield server
    server.stop()


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> str:
    """A fresh database of its own for one test."""
    return postgres_server.create_database()
