"""The shape every rule has: a stable id, what it checks, the sources it rests on, and a check."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from needlecheck.mappings.datasets import dataset_specs
from needlecheck.mappings.sources import PolicySource, policy_source
from needlecheck.plugin.context import BillingContext, ServiceLine
from needlecheck.plugin.families import Family
from needlecheck.plugin.findings import CodeChange, Finding, Severity, Topic


@dataclass(frozen=True)
class Rule:
    """A self-describing check. ``check`` receives the billing context and returns findings."""

    rule_id: str
    title: str
    severity: Severity
    topic: Topic
    family: Family  # the kind of card it produces, which sites and EHRs switch off as one
    checks: str
    source_ids: tuple[str, ...]
    can_fix: bool
    check: Callable[[BillingContext], list[Finding]]
    docs: str = ""
    data_sets: tuple[str, ...] = ()

    @property
    def sources(self) -> tuple[PolicySource, ...]:
        """The documents the rule rests on, from ``mappings/policy_sources/``."""
        return tuple(policy_source(source_id) for source_id in self.source_ids)

    def finding(self, line: ServiceLine, summary: str, detail: str, fix: CodeChange | None = None,
                severity: Severity | None = None) -> Finding:
        """A finding of this rule about ``line``; ``severity`` overrides the rule's for softer cases."""
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
        )

    def could_not_check(self, line: ServiceLine, data_set: str) -> Finding:
        """An unchecked ``info`` finding: the check needs data set ``data_set``, which is not installed."""
        spec = dataset_specs()[data_set]
        return replace(self.finding(
            line,
            f"Not checked: {self.title} (its data set is not installed)",
            f"{self.title} ({self.rule_id}) for {line.label}: needs {spec.title}, which is not installed "
            f"(an administrator can download it from {spec.publisher_url} into the `{data_set}` folder of the "
            "data sets directory)",
            severity=Severity.INFO,
        ), unchecked=True)
