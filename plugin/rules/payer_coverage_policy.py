"""DN-PAYER-002: the payer's policy on the date of service covers dry needling.

## What it does
Finds the payer's policy pack (``mappings/payer_directory.csv``) and the pack's statement on 20560/20561 in
force on the date of service (``mappings/payer_policies.csv``). A statement of *not covered* or
*investigational* is a warning citing the payer's policy (decisive: the engine drops the line's
coverage-dependent findings). A commercial payer with no usable statement on
that date gets the general warning that dry needling is likely not covered. Medicare and Medicare
Advantage are left to the NCD 30.3.3 rules; other payers without a statement get an `info` to verify.

Decisions (issue 9): one payer card per order or claim, not per line: the detail names every line it
concerns. The summary leads with the action and leaves the payer's name to the detail. Precedence:
coverage.

A pack applies only to the payer its source covers: MP-740 is Florida Blue's policy, so other Blue plans
(Blue Cross and Blue Shield of Texas, Wellmark ...) are commercial payers without a pack and get the
sourced generic advice (PY-14), never a statement in Florida Blue's name. A carrier's Medicare
Advantage plan gets the NCD rules, not the carrier's commercial pack.

## Why is this bad?
A payer that considers dry needling investigational or not medically necessary denies the claim, and
without a waiver signed before the service the practice cannot bill the patient either.

## Example
A claim for 20561 on 2024-05-06 to Anthem, whose 2024 rehabilitation guideline calls dry needling not
medically necessary in all clinical scenarios.

## Use instead
Verify the payer's current policy before the service. If it is not covered, have the patient sign the
payer-appropriate waiver or financial responsibility form, and bill as the payer instructs.
"""

from __future__ import annotations

from dataclasses import replace

from needlecheck.mappings.cpt import DRY_NEEDLING
from needlecheck.mappings.payer_policies import (
    COVERED,
    FOLLOWS_NCD,
    INVESTIGATIONAL,
    NOT_COVERED,
    PayerPolicy,
    policy_on,
)
from needlecheck.mappings.sources import policy_source
from needlecheck.plugin.context import BillingContext, ServiceLine
from needlecheck.plugin.families import Family
from needlecheck.plugin.findings import Finding, Severity, Topic
from needlecheck.plugin.payer import Payer, PayerClass, payer_of
from needlecheck.plugin.rule import Precedence, Rule
from needlecheck.plugin.wording import join_words, upper_first

_STATUS_WORDS = {NOT_COVERED: "not covered", INVESTIGATIONAL: "investigational"}


def _payer_words(payer: Payer) -> str:
    return payer.name or payer.pack or str(payer.payer_class)


def _lines_text(lines: list[ServiceLine], context: BillingContext) -> str:
    return join_words([f"{line.label} ({line.code}, {context.date_of(line).isoformat()})" for line in lines])


def _policy_finding(lines: list[ServiceLine], context: BillingContext, payer: Payer, policy: PayerPolicy) -> Finding:
    status = _STATUS_WORDS[policy.status]
    summary = f"Verify coverage or get a waiver: the payer calls dry needling {status}"
    detail = (
        f"{upper_first(_lines_text(lines, context))} bill dry needling to **{_payer_words(payer)}** (policy pack "
        f"`{payer.pack}`). {policy.statement} ({policy.source_id}, confidence {policy.confidence}). Expect a "
        "denial: verify the payer's current policy and, before the service, obtain the patient's written waiver "
        "or financial responsibility agreement."
    )
    return replace(RULE.finding(lines[0], summary, detail, decisive=True), sources=(policy.source,))


def _default_finding(lines: list[ServiceLine], context: BillingContext, payer: Payer,
                     policy: PayerPolicy | None) -> Finding:
    general = policy_source("PY-14")
    known = f" {policy.statement} ({policy.source_id})." if policy else ""
    billed = upper_first(_lines_text(lines, context))
    if payer.payer_class is PayerClass.COMMERCIAL:
        summary = "Verify the policy or get a waiver: most commercial payers do not cover dry needling"
        detail = (
            f"{billed} bill dry needling to **{_payer_words(payer)}**, a commercial payer for which Needlecheck "
            f"has no coverage statement in force on that date.{known} Most large commercial payers treat dry "
            "needling as investigational or not medically necessary (PY-14): verify the payer's policy and "
            "obtain the patient's written waiver before the service."
        )
        severity = Severity.WARNING
    else:
        summary = "Verify coverage before the service: no dry needling policy on file for this payer"
        detail = (
            f"{billed} bill dry needling to **{_payer_words(payer)}** ({payer.payer_class} payer), for which "
            f"Needlecheck has no dry needling policy in force on that date.{known} Verify the payer's coverage "
            "of 20560/20561 before the service."
        )
        severity = Severity.INFO
    sources = (general, policy.source) if policy else (general,)
    return replace(RULE.finding(lines[0], summary, detail, severity=severity), sources=sources)


def check_payer_coverage_policy(context: BillingContext) -> list[Finding]:
    """One finding per order or claim whose payer does not (or likely does not) cover its dry needling."""
    lines = context.dry_needling_lines
    if not lines:
        return []
    payer = payer_of(context)
    if payer.payer_class is PayerClass.UNKNOWN or payer.is_medicare:
        return []  # unknown: DN-PAYER-001 says so once; Medicare: the NCD 30.3.3 rules decide
    stated: dict[PayerPolicy, list[ServiceLine]] = {}
    unstated: dict[PayerPolicy | None, list[ServiceLine]] = {}
    for line in lines:
        policy = policy_on(payer.pack, DRY_NEEDLING, context.date_of(line)) if payer.pack else None
        if policy is not None and policy.status in (COVERED, FOLLOWS_NCD):
            continue
        if policy is not None and policy.status in _STATUS_WORDS:
            stated.setdefault(policy, []).append(line)
        else:
            unstated.setdefault(policy, []).append(line)
    # One payer card per order or claim: the strongest statement, naming every line it concerns.
    if stated:
        policy, policy_lines = next(iter(stated.items()))
        return [_policy_finding(policy_lines, context, payer, policy)]
    if unstated:
        policy, policy_lines = next(iter(unstated.items()))
        return [_default_finding(policy_lines, context, payer, policy)]
    return []


RULE = Rule(
    rule_id="DN-PAYER-002",
    title="Payer policy covers dry needling",
    severity=Severity.WARNING,
    topic=Topic.COVERAGE,
    family=Family.COVERAGE,
    checks="The payer's dry needling policy in force on the date of service does not call it not covered or "
           "investigational; commercial payers without a policy on file are likely non-covered.",
    source_ids=("PY-14", "PY-01", "PY-02", "PY-03", "PY-04", "PY-05", "PY-06", "PY-07", "PY-08", "PY-10"),
    can_fix=False,
    check=check_payer_coverage_policy,
    precedence=Precedence.COVERAGE,
    needs_coverage=True,
)
