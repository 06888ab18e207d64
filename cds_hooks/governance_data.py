"""What the governance report reads from a store: audit records, the cards shown, and the feedback on them."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from needlecheck.cds_hooks.audit import AuditRecord


@dataclass(frozen=True)
class IssuedCardRow:
    """A card shown: its uuid, service, rule and when."""

    card_uuid: str
    service_id: str
    rule_id: str
    issued_at: dt.datetime


@dataclass(frozen=True)
class FeedbackOnCard:
    """A feedback item on a shown card, with the card's rule; ``override_reason`` as the client sent it."""

    rule_id: str
    card_uuid: str
    outcome: str
    override_reason: dict[str, Any] | None
    accepted_suggestions: tuple[str, ...] = ()


@dataclass
class ReportData:
    """Everything recorded in the report's window."""

    audit: list[AuditRecord] = field(default_factory=list)
    issued: list[IssuedCardRow] = field(default_factory=list)
    feedback: list[FeedbackOnCard] = field(default_factory=list)
