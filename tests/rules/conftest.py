"""Every summary any rule writes, in every case the rule tests build, fits the card budget.

Issue 9 (card economy): summaries lead with the action, fit in 100 characters and are never cut by the
card layer, so each finding a rule creates during these tests is held to ``SUMMARY_BUDGET``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from needlecheck.cds_hooks.cards import SUMMARY_BUDGET
from needlecheck.plugin.findings import Finding
from needlecheck.plugin.rule import Rule


@pytest.fixture(autouse=True)
def summaries_fit_the_budget(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Fail the test that makes a rule write a summary over SUMMARY_BUDGET characters."""
    original = Rule.finding

    def checked(self: Rule, *args: Any, **kwargs: Any) -> Finding:
        finding = original(self, *args, **kwargs)
        assert len(finding.summary) <= SUMMARY_BUDGET, f"{finding.rule_id}: {finding.summary!r}"
        return finding

    monkeypatch.setattr(Rule, "finding", checked)
    yield
