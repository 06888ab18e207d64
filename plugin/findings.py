"""What a rule reports: findings, with an optional fix, and nothing about how a card looks."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from needlecheck.mappings.sources import PolicySource


class Severity(StrEnum):
    """How much a finding matters to the person signing: billing problems are warnings.

    The values are CDS Hooks card indicators. No rule reports ``critical`` itself; a site may raise a rule
    to it in its rule settings.
    """

    CRITICAL = "critical"
    WARNING = "warning"
    INFO = "info"

    @property
    def rank(self) -> int:
        """Higher is more severe: info 0, warning 1, critical 2."""
        return _RANKS[self]


_RANKS = {Severity.INFO: 0, Severity.WARNING: 1, Severity.CRITICAL: 2}


class Topic(StrEnum):
    """Da Vinci CRD card types (``cdshooks-card-type``) that our findings fall under."""

    CLAIM = "claim"
    COVERAGE = "coverage-info"
    LIMITS = "limits"


@dataclass(frozen=True)
class CodeChange:
    """A one-click fix: replace ``from_code`` by ``to_code`` in the draft resource (or one claim line)."""

    resource_ref: str
    from_code: str
    to_code: str
    item_sequence: int | None = None

    @property
    def label(self) -> str:
        """The suggestion's label as a person reads it."""
        return f"Change {self.from_code} to {self.to_code}"


@dataclass(frozen=True)
class Finding:
    """One problem with one order or claim line.

    ``summary`` is a sentence under 140 characters; ``detail`` is Markdown that names the line;
    ``line_key`` ties findings about the same line together so each problem yields one card;
    ``rationale`` is the rule's one-line statement of what it checks, cited with its sources.
    """

    rule_id: str
    severity: Severity
    topic: Topic
    summary: str
    detail: str
    line_key: str
    line_label: str
    sources: tuple[PolicySource, ...]
    fix: CodeChange | None = None
    rationale: str = ""
    # The rule could not run for want of data: reported with the other unchecked checks, not as a problem.
    unchecked: bool = False
