"""DN-PAYER-001: the payer of a dry-needling order or claim is identified, so its policy can be checked.

## What it does
Reads the patient's coverage (Coverage.type Source of Payment Typology code or X12 claim filing
indicator, Coverage.payor identifiers and names, Coverage.class plan names) and reports, once per order
or claim, when no payer class can be told from it, or when there is no coverage at all. Medicare is
recognised from SOPT 1x, X12 MA/MB/16, a MAC's name ("Medicare Part B (Novitas Solutions)"), a "Part B"
plan, or a carrier's Medicare plan name ("Aetna Medicare Eagle PPO" is Medicare Advantage).

Decisions (issue 9, card economy): a Coverage that names its payor (by name or identifier) which the
payer directory does not know gets no card. The person signing cannot act on it, and no source lets
Needlecheck say anything about an unknown payer's policy (PY-14 speaks of large commercial payers); an
administrator adds the payer to ``mappings/payer_directory.csv`` with its source. Precedence: coverage.

## Why is this bad?
Coverage of 20560/20561 depends entirely on the payer: Medicare pays only under NCD 30.3.3, most
commercial payers call dry needling investigational, a few cover it with limits. Without knowing the
payer, Needlecheck cannot say whether the service will be paid, and neither can the person signing.

## Example
A claim whose Coverage has no `type` and no `payor`, or an order for a patient with no Coverage.

## Use instead
Record the Coverage with its Source of Payment Typology type (e.g. `121` Medicare FFS, `5` private) and the
payor organization, then verify the payer's dry needling policy before the visit.
"""

from __future__ import annotations

from needlecheck.plugin.context import BillingContext
from needlecheck.plugin.families import Family
from needlecheck.plugin.findings import Finding, Severity, Topic
from needlecheck.plugin.payer import PayerClass, payer_of
from needlecheck.plugin.rule import Precedence, Rule


def check_payer_identified(context: BillingContext) -> list[Finding]:
    """One ``info`` finding when the call has dry-needling lines and its payer cannot be identified."""
    lines = context.dry_needling_lines
    if not lines:
        return []
    payer = payer_of(context)
    if payer.payer_class is not PayerClass.UNKNOWN:
        return []
    coverage = context.coverage
    if coverage is not None and (coverage.payor_names or coverage.payor_identifiers):
        # The record names its payer; that Needlecheck's directory does not know it is for an administrator
        # to fix (a sourced row in payer_directory.csv), not something the person signing can act on.
        return []
    if coverage is None:
        what = "The record sent with this request has no Coverage for the patient"
    else:
        what = (f"Coverage {coverage.reference} has no Source of Payment Typology type and names no payor, "
                "so the payer cannot be told")
    detail = (
        f"{what}, so the dry needling coverage for {lines[0].label} was not checked. Most commercial payers treat "
        "dry needling (20560/20561) as investigational or not medically necessary, Medicare pays only under "
        "NCD 30.3.3: verify the payer's policy, or obtain the patient's written waiver, before the service."
    )
    return [RULE.finding(lines[0], "Verify coverage before the service: the payer could not be identified", detail)]


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
    precedence=Precedence.COVERAGE,
)
