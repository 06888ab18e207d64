"""DN-DOC-001: every body site names one muscle.

## What it does
Reports the body sites of a dry-needling line that do not name a single muscle: group or region
concepts (erector spinae, hamstrings, "skeletal muscle structure of back"), codes that are not in the
muscle table, and sites given only as text. A line with no body site at all is reported too.

## Why is this bad?
Payers and auditors need each muscle named to support the muscle count; "paraspinals" or "muscle
groups" cannot be counted, so the choice between 20560 and 20561 cannot be checked.

## Example
bodySite "Structure of erector spinae muscle" (44947003).

## Use instead
One bodySite per muscle, each a SNOMED CT muscle concept with its side, e.g. longissimus (left).
"""

from __future__ import annotations

from needlecheck.plugin.context import BillingContext
from needlecheck.plugin.families import Family
from needlecheck.plugin.findings import Finding, Severity, Topic
from needlecheck.plugin.muscles import SiteProblem, TreatedSite
from needlecheck.plugin.rule import Precedence, Rule
from needlecheck.plugin.wording import upper_first

_WHY = {
    SiteProblem.GROUP: "a group or region, not one muscle",
    SiteProblem.UNMAPPED: "a code that is not a known muscle",
    SiteProblem.TEXT_ONLY: "text only, with no code",
}


def _describe(site: TreatedSite) -> str:
    return f"- \"{site.body_site.label}\": {_WHY[site.problem or SiteProblem.UNMAPPED]}"


def check_muscles_named_individually(context: BillingContext) -> list[Finding]:
    """A finding for each line with body sites that cannot be counted as muscles."""
    findings: list[Finding] = []
    for line in context.dry_needling_lines:
        if not line.body_sites:
            summary = f"No muscles documented, so {line.code} cannot be supported"
            detail = (
                f"**{upper_first(line.label)}** names no body site. Record each muscle needled as its own "
                "bodySite (a SNOMED CT muscle concept with its side) so the muscle count supports the code."
            )
            findings.append(RULE.finding(line, summary, detail))
            continue
        muscles = line.muscles
        if muscles.established:
            continue
        labels = ", ".join(f'"{site.body_site.label}"' for site in muscles.uncountable)
        summary = f"Name each muscle; {labels} cannot be counted"
        if len(summary) > 100:
            count = len(muscles.uncountable)
            summary = f"Name each muscle; {count} body sites cannot be counted"
        listing = "\n".join(_describe(site) for site in muscles.uncountable)
        detail = (
            f"**{upper_first(line.label)}** has body sites that do not name a single muscle:\n\n{listing}\n\n"
            f"They were not counted, so the muscle count ({muscles.count} named) and the choice between "
            "20560 and 20561 cannot be confirmed. Record each muscle as its own SNOMED CT bodySite with its side."
        )
        findings.append(RULE.finding(line, summary, detail))
    return findings


RULE = Rule(
    rule_id="DN-DOC-001",
    title="Muscles not named individually",
    severity=Severity.WARNING,
    topic=Topic.CLAIM,
    family=Family.DOCUMENTATION,
    checks="Every body site of a 20560/20561 line is one SNOMED CT muscle, not a group, region, unknown code or text.",
    source_ids=("CS-06",),
    can_fix=False,
    check=check_muscles_named_individually,
    precedence=Precedence.DOCUMENTATION,
)
