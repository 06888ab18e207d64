"""DN-PAYER-001: the payer of a dry-needling order or claim is identified, so its policy can be checked.

## What it does
Reads the patient's coverage (Coverage.type Source of Payment Typology code, Coverage.payor identifiers
and names) and reports, once per order or claim, when no payer class can be told from it, or when there
is no coverage at all.

## Why is this bad?
Coverage of 20560/20561 depends entirely on the payer: Medicare pays only under NCD 30.3.3, most
commercial payers call dry needling investigational, a few cover it with limits. Without knowing the
payer, Needlecheck cannot say whether the service will be paid, and neither can the person signing.

## Example
A claim whose Coverage has no `type` and a payor named "Acme Benefits Administrators".

## Use instead
Record the Coverage with its Source of Payment Typology type (e.g. `121` Medicare FFS, `5` private) and the
payor organization, then verify the payer's dry needling policy before the visit.
"""

from __future__ import annotations

from needlecheck.plugin.context import BillingContext
from needlecheck.plugin.families import Family
from needlecheck.plugin.findings import Finding, Severity, Topic
from needlecheck.plugin.payer import PayerClass, payer_of
from needlecheck.plugin.rule import Rule


def check_payer_identified(context: BillingContext) -> list[Finding]:
    """One ``info`` finding when the call has dry-needling lines and its payer cannot be identified."""
    lines = context.dry_needling_lines
    if not lines:
        return []
    payer = payer_of(context)
    if payer.payer_class is not PayerClass.UNKNOWN:
        return []
    if context.coverage is None:
        what = "The record sent with this request has no Coverage for the patient"
    else:
        named = f" (payor named **{payer.name}**)" if payer.name else ""
        what = (f"Coverage {context.coverage.reference}{named} has no Source of Payment Typology type and "
                "names no payer Needlecheck knows")
    detail = (
        f"{what}, so the dry needling coverage for {lines[0].label} was not checked. Most commercial payers treat "
        "dry needling (20560/20561) as investigational or not medically necessary, Medicare pays only under "
        "NCD 30.3.3: verify the payer's policy, or obtain the patient's written waiver, before the service."
    )
    return [RULE.finding(lines[0], "Coverage not verified: the payer could not be identified", detail)]


RULE = Rule(
    rule_id="DN-PAYER-001",
    title="Payer identified",
    severity=Severity.INFO,
    topic=Topic.COVERAGE,
    family=Family.COVERAGE,
    checks="The coverage of an order or claim with dry needling names a payer whose policy can be checked.",
    source_ids=("PY-14",),
    can_fix=False,
    check=check_payer_identified,
)
