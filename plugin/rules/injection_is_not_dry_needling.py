"""DN-CODE-003: a service in which something was injected is a trigger-point injection.

## What it does
Reports a dry-needling line whose Procedure names an injected drug or substance
(``Procedure.usedCode`` or ``Procedure.usedReference``).

## Why is this bad?
20560 and 20561 are "needle insertion(s) without injection(s)". With an injectate the service is a
trigger-point injection (20552 for 1-2 muscles, 20553 for 3 or more).

## Example
20560 for two muscles with lidocaine recorded as used.

## Use instead
20552, or remove the substance from the record if nothing was injected.
"""

from __future__ import annotations

from needlecheck.mappings.cpt import TRIGGER_POINT_INJECTION, codes_in_family, cpt_codes
from needlecheck.plugin.context import BillingContext
from needlecheck.plugin.families import Family
from needlecheck.plugin.findings import CodeChange, Finding, Severity, Topic
from needlecheck.plugin.rule import Rule
from needlecheck.plugin.wording import join_words, upper_first


def check_injection_is_not_dry_needling(context: BillingContext) -> list[Finding]:
    """A finding for each dry-needling line that records an injected substance."""
    findings: list[Finding] = []
    for line in context.dry_needling_lines:
        if not line.injected_substances:
            continue
        muscles = line.muscles
        injection_code = None
        if muscles.established and muscles.count:
            injection_code = next(
                (code for code in codes_in_family(TRIGGER_POINT_INJECTION)
                 if cpt_codes()[code].fits_muscle_count(muscles.count)),
                None,
            )
        substances = join_words(list(line.injected_substances))
        summary = f"{upper_first(line.label)}: {line.code} excludes injection, but {substances} was used"
        detail = (
            f"**{upper_first(line.label)}** records **{substances}** as used. {line.code} is needle "
            "insertion *without* injection; with an injectate the service is a trigger-point injection "
            "(20552 for 1-2 muscles, 20553 for 3 or more). If nothing was injected, correct the record "
            "and state \"no injectate\" in the note."
        )
        fix = CodeChange(line.resource_ref, line.code, injection_code, line.item_sequence) if injection_code else None
        findings.append(RULE.finding(line, summary, detail, fix))
    return findings


RULE = Rule(
    rule_id="DN-CODE-003",
    title="Injected substance recorded on a dry-needling service",
    severity=Severity.WARNING,
    topic=Topic.CLAIM,
    family=Family.CODING,
    checks="A 20560/20561 Procedure names no injected drug or substance (usedCode/usedReference).",
    source_ids=("CS-03",),
    can_fix=True,
    check=check_injection_is_not_dry_needling,
)
