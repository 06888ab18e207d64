"""DN-CODE-002: 20560 and 20561 are never reported for one patient on one date of service.

## What it does
Groups the dry-needling services of the order or claim, together with the patient's earlier
dry-needling Procedures, by date of service and reports a date that carries both 20560 and 20561 (a
Procedure counts once however often the record shows it; the one a line bills is not an earlier one).
When the date's lines are claim lines whose body sites decide the total, the card names the total and
offers one line with its code as the recommended change (as DN-UNIT-001 does, through
``plugin.same_day.dry_needling_session``); otherwise it asks for the total.

## Why is this bad?
The two codes split one per-session muscle count. Four muscles are 20561 once, never 20560 twice or
20560 plus 20561; payers' edits deny the second code.

## Example
Claim line 1 is 20560 (2 muscles) and claim line 2 is 20561 (3 muscles), both on 2026-03-02.

## Use instead
One line with the code for all muscles treated that day (here 20561, 5 muscles).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict

from needlecheck.plugin.context import BillingContext, ServiceLine
from needlecheck.plugin.families import Family
from needlecheck.plugin.findings import Finding, Severity, Topic
from needlecheck.plugin.rule import Precedence, Rule
from needlecheck.plugin.same_day import dry_needling_session, history_on
from needlecheck.plugin.wording import join_words


def check_one_code_per_date(context: BillingContext) -> list[Finding]:
    """One finding per date of service on which both dry-needling codes appear."""
    lines_by_date: dict[dt.date, list[ServiceLine]] = defaultdict(list)
    for line in context.dry_needling_lines:
        lines_by_date[context.date_of(line)].append(line)
    findings: list[Finding] = []
    for day, lines in sorted(lines_by_date.items()):
        earlier = history_on(context, day)
        if len(lines) + len(earlier) < 2:
            continue  # one service alone carries one code
        codes = {line.code for line in lines} | {prior.code for prior in earlier if prior.code in ("20560", "20561")}
        if len(codes) < 2:
            continue
        where = [f"{line.label} ({line.code})" for line in lines]
        where += [f"{prior.reference} ({prior.code}, already recorded)" for prior in earlier]
        session = dry_needling_session(context, day)
        summary = f"20560 and 20561 both on {day.isoformat()}: report one code for all muscles that day"
        if session.code is not None:
            summary = (f"Bill one {session.code} {session.unit_word} for {day.isoformat()}: 20560 and 20561 both "
                       f"there, {session.muscles.count} muscles in all")
        detail = (
            f"On **{day.isoformat()}** the patient has {join_words(where)}. 20560 and 20561 split one "
            f"per-session muscle count, so a date of service carries one of them, once. {session.advice}"
        )
        findings.append(RULE.finding(lines[0], summary, detail, session.merge))
    return findings


RULE = Rule(
    rule_id="DN-CODE-002",
    title="20560 and 20561 on one date of service",
    severity=Severity.WARNING,
    topic=Topic.CLAIM,
    family=Family.CODING,
    checks="No date of service carries both 20560 and 20561, in the request or with earlier Procedures.",
    source_ids=("CS-09",),
    can_fix=True,
    check=check_one_code_per_date,
    precedence=Precedence.CODE_CHOICE,
)
