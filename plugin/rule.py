"""The shape every rule has: a stable id, what it checks, the sources it rests on, and a check."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from enum import IntEnum
from typing import Any, TypeVar

from needlecheck.mappings.datasets import dataset_specs
from needlecheck.mappings.sources import PolicySource, policy_source
from needlecheck.plugin.context import BillingContext, ServiceLine
from needlecheck.plugin.families import Family
from needlecheck.plugin.findings import CodeChange, Finding, Severity, Topic

T = TypeVar("T")
U = TypeVar("U")

# What ``from_table`` derived, by deriving function: the table it was derived from, and the result.
_FROM_TABLE: dict[Callable[[Any], Any], tuple[object, Any]] = {}


def from_table(table: T, derive: Callable[[T], U]) -> U:
    """``derive(table)``, worked out once per table: a shipped table is loaded once per process, so what a rule
    derives from it alone (the codes it lists, the rows of one kind) need not be derived again on every call.
    Another table (a test may load one) is derived afresh."""
    held = _FROM_TABLE.get(derive)
    if held is None or held[0] is not table:
        held = _FROM_TABLE[derive] = (table, derive(table))
    return held[1]  # type: ignore[no-any-return]


class Precedence(IntEnum):
    """Which finding decides when several rules speak about one line: the lower, the earlier it decides.

    A statutory exclusion makes coverage criteria moot; a coverage denial makes session caps and the
    payer's documentation moot; the code must be right before its modifiers are; documentation comes
    last. ``plugin.engine`` applies it: a finding that decides the line's payment (``Finding.decisive``)
    silences the line's later findings of rules that only matter when the payer may pay.
    """

    STATUTORY_EXCLUSION = 1
    COVERAGE = 2
    CODE_CHOICE = 3
    MODIFIERS = 4
    DOCUMENTATION = 5

    @property
    def words(self) -> str:
        """"statutory exclusion", as docs/rules.md names the family."""
        return self.name.lower().replace("_", " ")


@dataclass(frozen=True)
class Rule:
    """A self-describing check. ``check`` receives the billing context and returns findings.

    ``precedence`` places the rule in the order statutory exclusion > coverage > code choice > modifiers
    > documentation; ``needs_coverage`` says its advice only serves getting this payer to pay the line
    (session caps, the payer's documentation, coverage criteria), so it is moot once a finding of an
    earlier family decides the line will not be paid.
    """

    rule_id: str
    title: str
    severity: Severity
    topic: Topic
    family: Family  # the kind of card it produces, which sites and EHRs switch off as one
    checks: str
    source_ids: tuple[str, ...]
    can_fix: bool
    check: Callable[[BillingContext], list[Finding]]
    precedence: Precedence
    needs_coverage: bool = False
    docs: str = ""
    data_sets: tuple[str, ...] = ()

    @property
    def sources(self) -> tuple[PolicySource, ...]:
        """The documents the rule rests on, from ``mappings/policy_sources/``."""
        return tuple(policy_source(source_id) for source_id in self.source_ids)

    def finding(self, line: ServiceLine, summary: str, detail: str, fix: CodeChange | None = None,
                severity: Severity | None = None, decisive: bool = False) -> Finding:
        """A finding of this rule about ``line``; ``severity`` overrides the rule's for softer cases;
        ``decisive`` when it settles that this payer will not pay the line whatever else is changed."""
        return Finding(
            rule_id=self.rule_id,
            severity=severity or self.severity,
            topic=self.topic,
            summary=summary,
            detail=detail,
            line_key=line.key,
            line_label=line.label,
            sources=self.sources,
            fix=fix,
            rationale=self.checks,
            precedence=int(self.precedence),
            needs_coverage=self.needs_coverage,
            decisive=decisive,
        )

    def not_checked(self, line: ServiceLine, what: str) -> Finding:
        """An unchecked ``info`` finding: ``what`` the check needs for ``line`` could not be obtained."""
        return replace(self.finding(line, f"Not checked: {self.title}",
                                    f"{self.title} ({self.rule_id}) for {line.label}: {what}",
                                    severity=Severity.INFO), unchecked=True)

    def could_not_check(self, line: ServiceLine, data_set: str) -> Finding:
        """An unchecked ``info`` finding: the check needs data set ``data_set``, which is not installed."""
        spec = dataset_specs()[data_set]
        return replace(self.finding(
            line,
            f"Not checked: {self.title}",
            f"{self.title} ({self.rule_id}) for {line.label}: needs {spec.title}, which is not installed "
            f"(an administrator can download it from {spec.publisher_url} into the `{data_set}` folder of the "
            "data sets directory)",
            severity=Severity.INFO,
        ), unchecked=True)
