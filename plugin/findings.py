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
    """A one-click fix: replace ``from_code`` by ``to_code`` in the draft resource (or one claim line).

    ``proven`` when the record's evidence proves the change (the card marks it ``isRecommended``); a
    change that rests on an inference or on data to confirm is offered, not recommended.
    ``merged_items`` are other claim lines of the same draft that the change folds into this one (their
    Procedures and diagnoses join it and they are removed): several lines of one session become one.
    """

    resource_ref: str
    from_code: str
    to_code: str
    item_sequence: int | None = None
    proven: bool = True
    merged_items: tuple[int, ...] = ()

    @property
    def label(self) -> str:
        """The suggestion's label as a person reads it."""
        if self.merged_items and self.item_sequence is not None:
            lines = ", ".join(str(n) for n in (self.item_sequence, *self.merged_items[:-1]))
            return f"Bill lines {lines} and {self.merged_items[-1]} as one {self.to_code} line"
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
    # The rule's Precedence (plugin.rule) and whether its advice only matters when the payer may pay.
    precedence: int = 5
    needs_coverage: bool = False
    # The finding settles that the payer will not pay the line (plugin.engine silences what it makes moot).
    decisive: bool = False
