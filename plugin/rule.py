"""The shape every rule has: a stable id, what it checks, the sources it rests on, and a check."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from mappings.sources import PolicySource, policy_source
from plugin.context import BillingContext, ServiceLine
from plugin.findings import CodeChange, Finding, Severity, Topic


@dataclass(frozen=True)
class Rule:
    """A self-describing check. ``check`` receives the billing context and returns findings."""

    rule_id: str
    title: str
    severity: Severity
    topic: Topic
    checks: str
    source_ids: tuple[str, ...]
    can_fix: bool
    check: Callable[[BillingContext], list[Finding]]
    docs: str = ""

    @property
    def sources(self) -> tuple[PolicySource, ...]:
        """The documents the rule rests on, from ``mappings/policy_sources.yaml``."""
        return tuple(policy_source(source_id) for source_id in self.source_ids)

    def finding(self, line: ServiceLine, summary: str, detail: str, fix: CodeChange | None = None) -> Finding:
        """A finding of this rule about ``line``."""
        return Finding(
            rule_id=self.rule_id,
            severity=self.severity,
            topic=self.topic,
            summary=summary,
            detail=detail,
            line_key=line.key,
            line_label=line.label,
            sources=self.sources,
            fix=fix,
        )
