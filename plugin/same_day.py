"""The services of one patient on one date: the lines being checked and the earlier Procedures of that date.

Code-pair rules (``mappings/code_pairs.csv``, NCCI PTP edits) compare a dry-needling line with the
other services of its date of service; this module finds them once, the same way for every rule.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from dataclasses import dataclass
from operator import attrgetter

from needlecheck.mappings.code_pairs import CodePair, code_pair_on, code_pairs
from needlecheck.mappings.cpt import DRY_NEEDLING, codes_in_family, dry_needling_code_for
from needlecheck.plugin.context import BillingContext, PriorService, ServiceLine
from needlecheck.plugin.findings import CodeChange, Finding, Severity
from needlecheck.plugin.muscles import MuscleCount, count_muscles
from needlecheck.plugin.rule import Rule
from needlecheck.plugin.wording import join_words, muscle_list, upper_first

_CODE = attrgetter("code")
_DATE_OF_SERVICE = attrgetter("date_of_service")


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
    lines, history = context.derived("services by day", _services_by_day).get(day, ((), ()))
    found = [SameDayService(line.code, line=line) for line in lines
             if line is not besides and (codes is None or line.code in codes)]
    found += [SameDayService(prior.code, prior=prior) for prior in history if codes is None or prior.code in codes]
    return tuple(found)


def history_on(context: BillingContext, day: dt.date) -> list[PriorService]:
    """The earlier Procedures dated ``day``, in the record's order (several rules ask, per line; most days have
    none, which the set of the history's dates tells at once)."""
    if day not in context.derived("history dates", _history_dates):
        return []
    return [prior for prior in context.history if prior.date_of_service == day]


def _history_dates(context: BillingContext) -> frozenset[dt.date | None]:
    return frozenset(map(_DATE_OF_SERVICE, context.history))


def _services_by_day(context: BillingContext) -> dict[dt.date | None, tuple[list[ServiceLine], list[PriorService]]]:
    """The lines and earlier Procedures of each date, in their order (every code-pair rule asks, per line)."""
    by_day: dict[dt.date | None, tuple[list[ServiceLine], list[PriorService]]] = {}
    for line in context.lines:
        by_day.setdefault(context.date_of(line), ([], []))[0].append(line)
    for prior in context.history:
        by_day.setdefault(prior.date_of_service, ([], []))[1].append(prior)
    return by_day


@dataclass(frozen=True)
class PairMatch:
    """A line with a code of a pair's first set, and the services of the second set on its date."""

    pair: CodePair
    line: ServiceLine
    day: dt.date
    others: tuple[SameDayService, ...]


def codes_present(context: BillingContext) -> frozenset[str]:
    """The codes of the context's lines and earlier Procedures, whatever their dates (worked out once per context)."""
    return context.derived("codes present", _codes_present)


def _codes_present(context: BillingContext) -> frozenset[str]:
    return frozenset(map(_CODE, context.lines)).union(map(_CODE, context.history))


def could_meet(context: BillingContext, pair: CodePair) -> bool:
    """Whether both sets of ``pair`` have a code in the context: a match needs one of each, so without them
    ``pair_matches`` finds nothing (most calls carry no code of a pair's second set)."""
    present = codes_present(context)
    return not (pair.first.isdisjoint(present) or pair.second.isdisjoint(present))


def pair_matches(context: BillingContext, pair_id: str, with_history: bool = True) -> list[PairMatch]:
    """Each line of the first set that meets the second set on its date, with the row in force that day.

    When only the second set is in the request (say a trigger-point injection billed after a dry-needling
    Procedure the same day) the finding attaches to that line instead.
    """
    if not could_meet(context, code_pairs()[pair_id]):
        return []
    return _pair_matches(context, pair_id, with_history)


def _pair_matches(context: BillingContext, pair_id: str, with_history: bool) -> list[PairMatch]:
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


@dataclass(frozen=True)
class DryNeedlingSession:
    """The dry-needling lines of one date taken together, as the one session CPT says they are.

    ``muscles`` counts the body sites of all the lines at once (a muscle on two lines counts once);
    ``code`` is the one code for that total when the count decides it: 3 or more named muscles prove
    20561 whatever else is unnamed, and a complete count of at most 2 (each muscle without a side
    counted as possibly two) proves 20560. An earlier dry-needling Procedure of the date leaves the code
    open: its muscles are not in the history. ``proven`` says whether the muscles that decide the code
    rest on verified SNOMED CT rows (3 or more verified muscles for 20561, every muscle verified for
    20560), which makes the merge the recommended change; otherwise it is offered, not recommended.
    """

    day: dt.date
    lines: tuple[ServiceLine, ...]
    earlier: tuple[PriorService, ...]
    muscles: MuscleCount
    code: str | None
    proven: bool = False

    @property
    def merge(self) -> CodeChange | None:
        """One line with ``code`` instead of the lines of a claim, when the lines are one claim's and nothing
        else was recorded that day; recommended when ``proven``."""
        first, *others = self.lines
        if self.code is None or not others or self.earlier or first.item_sequence is None:
            return None
        if any(o.resource_ref != first.resource_ref or o.item_sequence is None for o in others):
            return None
        merged = tuple(o.item_sequence for o in others if o.item_sequence is not None)
        return CodeChange(first.resource_ref, first.code, self.code, first.item_sequence, self.proven, merged)

    @property
    def unit_word(self) -> str:
        """"line" for claim lines, "order" for orders."""
        return "line" if all(line.item_sequence is not None for line in self.lines) else "order"

    @property
    def advice(self) -> str:
        """What the session adds up to, in a sentence for a card's detail."""
        noun = "muscle" if self.muscles.count == 1 else "muscles"
        named = f"{self.muscles.count} {noun} ({muscle_list(self.muscles.muscles)})"
        if self.code is not None:
            return f"Together they name {named}: one **{self.code}** {self.unit_word} with one unit covers the session."
        if self.earlier:
            return ("Add the muscles of the service already recorded to these and report the single code for the "
                    "total (20560 for 1-2 muscles, 20561 for 3 or more), once.")
        return (f"The lines name {named} that could be counted; name every muscle with its side, add them up "
                "and report the single code for the total (20560 for 1-2 muscles, 20561 for 3 or more), once.")


def dry_needling_session(context: BillingContext, day: dt.date) -> DryNeedlingSession:
    """The dry-needling lines of ``day`` and the earlier dry-needling Procedures of that date, as one session."""
    codes = frozenset(codes_in_family(DRY_NEEDLING))
    lines = tuple(line for line in context.dry_needling_lines if context.date_of(line) == day)
    earlier = tuple(prior for prior in context.history if prior.date_of_service == day and prior.code in codes)
    muscles = count_muscles(site for line in lines for site in line.body_sites)
    # A line without body sites hides its muscles: then only 3 or more named muscles decide.
    complete = muscles.established and all(line.body_sites for line in lines)
    most = muscles.count + len(muscles.unsided) if complete else None
    code, proven = None, False
    if not earlier and muscles.count >= 3:
        code, proven = dry_needling_code_for(muscles.count, day), muscles.confirmed_count >= 3
    elif not earlier and most is not None and 1 <= most <= 2:
        code, proven = dry_needling_code_for(most, day), muscles.confirmed
    return DryNeedlingSession(day, lines, earlier, muscles, code, proven=proven)
