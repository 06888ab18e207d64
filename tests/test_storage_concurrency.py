"""Nothing lost under concurrency: many writers, several gunicorn workers, retries, on both backends.

``needlecheck serve`` runs with three workers against SQLite (one file shared by the workers) and against
PostgreSQL (a pool per worker). Eight client threads send the same feedback items several times each, in
overlapping batches, as EHRs retrying after a timeout would, and call the hooks in between. Afterwards every
accepted item must be in the database exactly once, the ``stored`` counts of all answers must add up to the
number of distinct items (each item was new exactly once, whichever worker stored it), and every hook call
must have its audit record.
"""

from __future__ import annotations

import json
import random
import sqlite3
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import psycopg
import pytest
import requests

from tests.support.served_process import serve_needlecheck

SERVICE = "dry-needling-order-sign"
WRITERS = 8
ITEMS = 120
COPIES_PER_ITEM = 3  # how many writers send each item; each of them also repeats its batch once
HOOK_CALLS_PER_WRITER = 4
REQUEST = json.loads((Path(__file__).resolve().parent.parent / "fixtures" / "requests" / "order-sign"
                      / "code001-20561-two-muscles.json").read_text(encoding="utf-8"))

Identity = tuple[str, str, str, str]


def feedback_item(index: int) -> dict[str, Any]:
    """Item ``index``: odd ones accepted, even ones overridden."""
    item: dict[str, Any] = {"card": f"5c0f7a52-0000-4000-8000-{index:012d}",
                            "outcomeTimestamp": f"2026-03-02T10:{index // 60:02d}:{index % 60:02d}Z"}
    if index % 2:
        item.update(outcome="accepted", acceptedSuggestions=[{"id": f"sugg-{index}"}])
    else:
        item.update(outcome="overridden", overrideReason={"userComment": f"comment {index}"})
    return item


def identity(item: dict[str, Any]) -> Identity:
    """The unique key the store keeps feedback under."""
    return SERVICE, item["card"], item["outcome"], item["outcomeTimestamp"]


class Ledger:
    """What the writers were told, collected across threads."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.accepted: set[Identity] = set()
        self.stored_total = 0
        self.hook_calls = 0
        self.failures: list[str] = []


def post_with_retries(session: requests.Session, url: str, body: dict[str, Any]) -> requests.Response:
    """POST until an answer that is not a server error, as a client retrying a timeout or a 503 does."""
    for _ in range(5):
        try:
            response = session.post(url, json=body, timeout=30)
        except requests.RequestException:
            continue
        if response.status_code < 500:
            return response
    raise AssertionError(f"no answer without a server error from {url}")


def writer(base_url: str, items: list[int], ledger: Ledger, seed: int) -> None:
    """Send ``items`` in random batches of one to four, each batch twice; call the hook in between."""
    shuffle = random.Random(seed)
    shuffle.shuffle(items)
    batches: list[list[int]] = []
    while items:
        size = shuffle.randint(1, 4)
        batches.append(items[:size])
        items = items[size:]
    hook_every = max(1, len(batches) // HOOK_CALLS_PER_WRITER)
    with requests.Session() as session:
        session.trust_env = False
        for number, batch in enumerate(batches):
            body = {"feedback": [feedback_item(index) for index in batch]}
            for _ in range(2):
                response = post_with_retries(session, f"{base_url}/cds-services/{SERVICE}/feedback", body)
                with ledger.lock:
                    if response.status_code == 200:
                        ledger.accepted.update(identity(item) for item in body["feedback"])
                        ledger.stored_total += response.json()["stored"]
                    else:
                        ledger.failures.append(f"feedback {response.status_code}: {response.text[:200]}")
            if number % hook_every == 0:
                answered = post_with_retries(session, f"{base_url}/cds-services/{SERVICE}", REQUEST)
                with ledger.lock:
                    ledger.hook_calls += 1
                    if answered.status_code != 200:
                        ledger.failures.append(f"hook {answered.status_code}: {answered.text[:200]}")


def stored_feedback(config: dict[str, Any]) -> tuple[Counter[Identity], int]:
    """Every feedback row's key with how often it occurs, and the number of audit rows, read from the database."""
    feedback_query = "SELECT service_id, card_uuid, outcome, outcome_timestamp FROM feedback"
    audit_query = "SELECT COUNT(*) FROM audit WHERE service_id = 'dry-needling-order-sign'"
    if config["database_url"]:
        with psycopg.connect(config["database_url"]) as connection:
            rows = connection.execute(feedback_query).fetchall()
            audits = connection.execute(audit_query).fetchone()
    else:
        with sqlite3.connect(config["sqlite"]) as connection:
            rows = connection.execute(feedback_query).fetchall()
            audits = connection.execute(audit_query).fetchone()
    return Counter(tuple(row) for row in rows), int(audits[0]) if audits else 0


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_every_accepted_feedback_item_is_stored_exactly_once(backend: str, tmp_path: Path,
                                                             request: pytest.FixtureRequest) -> None:
    url = request.getfixturevalue("postgres_url") if backend == "postgres" else None
    config_text = f"database_url = {json.dumps(url)}\n" if url else ""
    plan: list[list[int]] = [[] for _ in range(WRITERS)]
    for index in range(ITEMS):
        for copy in range(COPIES_PER_ITEM):
            plan[(index + copy * 3) % WRITERS].append(index)
    ledger = Ledger()
    with serve_needlecheck(tmp_path, config_text, workers=3) as served:
        threads = [threading.Thread(target=writer, args=(served.base_url, items, ledger, seed))
                   for seed, items in enumerate(plan)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert not any(thread.is_alive() for thread in threads), "writers did not finish"
    assert ledger.failures == []
    expected = {identity(feedback_item(index)) for index in range(ITEMS)}
    assert ledger.accepted == expected
    rows, audit_rows = stored_feedback({"database_url": url, "sqlite": tmp_path / "data" / "needlecheck.sqlite3"})
    assert set(rows) == ledger.accepted  # none lost
    assert max(rows.values()) == 1  # none twice
    # Each item was reported new by exactly one answer, whichever worker and retry it was.
    assert ledger.stored_total == len(expected)
    assert audit_rows == ledger.hook_calls > 0
