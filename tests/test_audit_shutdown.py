"""No audit record is lost when ``needlecheck serve`` is stopped with SIGTERM, on SQLite and on PostgreSQL.

Each worker writes its audit records from a queue (cds_hooks/audit_writer.py). The test holds a lock on the
audit table while the calls are answered, so the records are still queued when SIGTERM arrives (as they
would be behind a busy database), and frees it a moment after: every record, and every card the calls showed,
must be in the database once the service has exited.
"""

from __future__ import annotations

import json
import signal
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import requests

from tests.support.served_process import ServedProcess, serve_needlecheck

REQUESTS = Path(__file__).resolve().parent.parent / "fixtures" / "requests" / "order-sign"
BODIES = ("code001-20561-two-muscles.json", "clean-20560-bilateral-trapezius.json", "doc002-no-laterality.json")
CALLS = 30
EXIT_TIMEOUT = 60.0  # a guard against a hang, not a speed requirement


def calls() -> list[dict[str, Any]]:
    """CALLS order-sign requests (with and without cards), each with a hook instance of its own."""
    bodies = [json.loads((REQUESTS / name).read_text(encoding="utf-8")) for name in BODIES]
    return [dict(bodies[index % len(bodies)], hookInstance=str(uuid.uuid4())) for index in range(CALLS)]


@contextmanager
def sqlite_lock(database: Path) -> Iterator[Callable[[], None]]:
    """The write lock of ``database`` taken; the function given releases it."""
    connection = sqlite3.connect(database, isolation_level=None)
    connection.execute("BEGIN IMMEDIATE")
    try:
        yield lambda: connection.execute("ROLLBACK")
    finally:
        connection.close()


@contextmanager
def postgres_lock(url: str) -> Iterator[Callable[[], None]]:
    """A lock on the audit table that makes every INSERT wait; the function given releases it."""
    connection = psycopg.connect(url)
    connection.execute("LOCK TABLE audit IN SHARE ROW EXCLUSIVE MODE")
    try:
        yield connection.rollback
    finally:
        connection.close()


def answer_then_stop(served: ServedProcess, lock: Any) -> tuple[list[dict[str, Any]], int]:
    """Send the calls under ``lock``, SIGTERM the service, release the lock; the requests and the cards shown."""
    requests_sent = calls()
    cards = 0
    with lock as release:
        for body in requests_sent:
            with requests.Session() as http:  # a connection each: the calls spread over the workers
                http.trust_env = False
                answer = http.post(f"{served.base_url}/cds-services/dry-needling-order-sign", json=body, timeout=60)
            assert answer.status_code == 200, answer.text
            cards += sum(1 for card in answer.json()["cards"] if "extension" in card)
        served.process.send_signal(signal.SIGTERM)
        time.sleep(1.0)  # the workers are stopping, their records still queued behind the lock
        assert served.process.poll() is None, served.log()[-3000:]
        release()
    assert served.process.wait(EXIT_TIMEOUT) == 0, served.log()[-3000:]
    return requests_sent, cards


def test_sigterm_loses_no_audit_record_on_sqlite(tmp_path: Path) -> None:
    with serve_needlecheck(tmp_path, "", workers=2) as served:
        database = tmp_path / "data" / "needlecheck.sqlite3"
        sent, cards = answer_then_stop(served, sqlite_lock(database))
    with sqlite3.connect(database) as connection:
        instances = {row[0] for row in connection.execute("SELECT hook_instance FROM audit")}
        issued = connection.execute("SELECT COUNT(*) FROM card_issued").fetchone()[0]
    assert instances == {body["hookInstance"] for body in sent}  # and none for the workers' warm-up calls
    assert cards > 0 and issued == cards
    assert not any(problem in served.log() for problem in ("not stored", "not written", "Traceback"))
    assert served.log().count("worker warmed up") == 2


def test_sigterm_loses_no_audit_record_on_postgresql(tmp_path: Path, postgres_url: str) -> None:
    with serve_needlecheck(tmp_path, f"database_url = {json.dumps(postgres_url)}\n", workers=2) as served:
        sent, cards = answer_then_stop(served, postgres_lock(postgres_url))
    with psycopg.connect(postgres_url) as connection:
        instances = {row[0] for row in connection.execute("SELECT hook_instance FROM audit")}
        issued = connection.execute("SELECT COUNT(*) FROM card_issued").fetchone()[0]
    assert instances == {body["hookInstance"] for body in sent}
    assert cards > 0 and issued == cards
    assert not any(problem in served.log() for problem in ("not stored", "not written", "Traceback"))

