"""Where feedback and the audit log are kept: one small interface, two backends.

SQLite (a WAL file in the data directory) serves one instance, however many workers it runs; PostgreSQL,
chosen by ``database_url``, serves several instances behind a load balancer. Both keep feedback
idempotently: the unique key (service, card, outcome, outcome timestamp) makes a repeat a no-op.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Protocol

from needlecheck.cds_hooks.audit import AuditRecord
from needlecheck.cds_hooks.feedback import FeedbackItem
from needlecheck.cds_hooks.settings import Settings

if TYPE_CHECKING:
    from needlecheck.cds_hooks.governance_data import ReportData


class StoreUnavailable(Exception):
    """The database cannot be reached or is busy past its timeout; the caller may retry. Safe to log."""


class Store(Protocol):
    """Feedback and audit records, safe to share between threads (and, through the database, processes)."""

    def save_feedback(self, service_id: str, items: list[FeedbackItem]) -> int:
        """Store every item in one transaction; returns how many were new (repeats are not stored again)."""
        ...

    def count_feedback(self, service_id: str | None = None) -> int:
        """How many feedback items are stored (for one service, or in all)."""
        ...

    def record_invocation(self, record: AuditRecord) -> None:
        """Append one audit record, and the cards it shows (``issued_cards``) in the same transaction."""
        ...

    def record_invocations(self, records: list[AuditRecord]) -> None:
        """Append audit records and the cards they show, all in one transaction (the audit writer's batches)."""
        ...

    def invocations(self, limit: int = 100) -> list[AuditRecord]:
        """The latest audit records, newest first."""
        ...

    # Alert governance (cds_hooks/suppression.py, cds_hooks/governance_report.py)
    def overridden_findings(self, patient_key: str, finding_keys: list[str], since: dt.datetime) -> set[str]:
        """Which of ``finding_keys`` of this patient were on a card overridden at or after ``since``."""
        ...

    def report_data(self, since: dt.datetime | None, until: dt.datetime | None) -> ReportData:
        """Audit records, shown cards and the feedback on them, recorded in [since, until)."""
        ...

    def check(self) -> None:
        """Raise StoreUnavailable unless the database answers."""
        ...

    def describe(self) -> str:
        """Where the data is, for the start-up log (never a password)."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


def open_store(settings: Settings) -> Store:
    """PostgreSQL when ``settings.database_url`` is set, else SQLite in the data directory; schema created."""
    if settings.database_url:
        from needlecheck.cds_hooks.postgres_store import PostgresStore

        return PostgresStore(settings.database_url)
    from needlecheck.cds_hooks.sqlite_store import SqliteStore

    return SqliteStore(settings.sqlite_database)


def describe_storage(settings: Settings) -> str:
    """Where ``open_store`` keeps the data, for the start-up log: never the user or password of the URL."""
    if settings.database_url:
        from needlecheck.cds_hooks.postgres_store import describe_url

        return describe_url(settings.database_url)
    return f"SQLite {settings.sqlite_database}"
