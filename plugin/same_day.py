"""The services of one patient on one date: the lines being checked and the earlier Procedures of that date.

Code-pair rules (``mappings/code_pairs.csv``, NCCI PTP edits) compare a dry-needling line with the
other services of its date of service; this module finds them once, the same way for every rule.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from dataclasses import dataclass

from needlecheck.mappings.code_pairs import CodePair, code_pair_on
from needlecheck.plugin.context import BillingContext, PriorService, ServiceLine
from needlecheck.plugin.findings import Finding, Severity
from needlecheck.plugin.rule import Rule
from needlecheck.plugin.wording import join_words, upper_first


@dataclass(frozen=True)
class SameDayService:
    """Another service on the date: a line of this call (``line``) or an earlier Procedure (``prior``)."""

    code: str
    line: ServiceLine | None = None
    prior: PriorService | None = None

    @property
    def label(self) -> str:
        """How a person names it: "claim line 2 (97813)" or "Procedure/p9 (97813, already recorded)"."""
        if self.line is not None:
            return f"{self.line.label} ({self.code})"
        reference = self.prior.reference if self.prior else "an earlier service"
        return f"{reference} ({self.code}, already recorded)"

    @property
    def modifiers(self) -> tuple[str, ...]:
        """The line's modifiers; an earlier Procedure carries none we can see."""
        return self.line.modifiers if self.line is not None else ()


def services_on(context: BillingContext, day: dt.date, codes: Collection[str] | None = None,
                besides: ServiceLine | None = None) -> tuple[SameDayService, ...]:
    """The lines (other than ``besides``) and earlier Procedures on ``day``, limited to ``codes`` if given."""
    found = [SameDayService(line.code, line=line) for line in context.lines
             if line is not besides and context.date_of(line) == day and (codes is None or line.code in codes)]
    found += [SameDayService(prior.code, prior=prior) for prior in context.history
              if prior.date_of_service == day and (codes is None or prior.code in codes)]
    return tuple(found)


@dataclass(frozen=True)
class PairMatch:
    """A line with a code of a pair's first set, and the services of the second set on its date."""

    pair: CodePair
    line: ServiceLine
    day: dt.date
    others: tuple[SameDayService, ...]


def pair_matches(context: BillingContext, pair_id: str, with_history: bool = True) -> list[PairMatch]:
    """Each line of the first set that meets the second set on its date, with the row in force that day.

    When only the second set is in the request (say a trigger-point injection billed after a dry-needling
    Procedure the same day) the finding attaches to that line instead.
    """
    matches: list[PairMatch] = []
    for line in context.lines:
        day = context.date_of(line)
        pair = code_pair_on(pair_id, day)
        if pair is None:
            continue
        if line.code in pair.first:
            others = services_on(context, day, pair.second, besides=line)
        elif line.code in pair.second:
            others = services_on(context, day, pair.first, besides=line)
            if any(other.line is not None for other in others):
                continue  # the first-set line of the request carries the finding
        else:
            continue
        if not with_history:
            others = tuple(other for other in others if other.line is not None)
        if others:
            matches.append(PairMatch(pair, line, day, others))
    return matches


def same_date_findings(context: BillingContext, rule: Rule, pair_id: str, summary: str, advice: str) -> list[Finding]:
    """One finding of ``rule`` per match of pair ``pair_id``, at the severity of the pair's row.

    The card reads "<line>: <summary>" with ``{day}`` filled in, and its detail "On <day> <line> meets
    <others>. <advice>" with ``{confidence}`` (the row's) filled in: the wording of a plain same-date pair.
    """
    findings: list[Finding] = []
    for match in pair_matches(context, pair_id):
        others = join_words([other.label for other in match.others])
        day = match.day.isoformat()
        head = f"{upper_first(match.line.label)}: {summary.format(day=day)}"
        detail = (f"On **{day}** {match.line.label} ({match.line.code}) meets {others}. "
                  f"{advice.format(confidence=match.pair.confidence)}")
        findings.append(rule.finding(match.line, head, detail, severity=Severity(match.pair.severity)))
    return findings
