"""DN-MCR-004: Medicare never pays a physical therapist's or a chiropractor's dry needling.

## What it does
For a dry-needling line whose recognised performers are all physical therapists, PT assistants or
chiropractors (``plugin.performer``, from NUCC taxonomy and degree codes):

- traditional Medicare: the service is outside every Medicare benefit, so the claim line should carry
  **GY** (or **GX** after a voluntary ABN; GX with GY is allowed). Warning when it carries neither, and
  warning when it carries GA or GZ, the modifiers of a not-reasonable-and-necessary denial;
- Medicare Advantage: warning that the plan, following NCD 30.3.3, will not pay either (the ABN
  modifiers themselves are DN-MCR-007's concern).

Lines with no recognised performer, or with a physician, PA, NP, CNS or acupuncturist among the
performers, are not reported: the record does not show that the ineligible practitioner needled.
The rule applies on every date: before 2020-01-21 Medicare covered no dry needling at all.

At order-sign (a ServiceRequest carries no modifiers) the advice is the voluntary ABN to give before the
service, not a modifier.

Decisions (issue 9): precedence *statutory exclusion*, the earliest family; the finding is decisive, so
the engine drops the line's NCD coverage, session cap (KX) and payer documentation findings: no criterion
or modifier makes the service payable. A line that already carries GY or GX gets no card, and the
NCD rules skip it too (``plugin.medicare.lines_under_ncd``). Summaries lead with the action and name no
payer.

## Why is this bad?
"Dry needling services delivered by a PT are never covered under Medicare" (MC-07): the NCD names
physicians, and PAs, NPs/CNSs and auxiliary personnel with acupuncture credentials (MC-06); chiropractors
cannot be the acupuncture physician. Without GY/GX the claim looks like a coverage dispute, and with
GA/GZ it claims a reasonable-and-necessary denial for a service that no benefit covers (MC-11, MC-12);
the MAC can then refuse to make the patient liable. A PT assistant is treated like the PT (inference).

## Example
A 20560 claim line performed by a Practitioner with NUCC taxonomy 225100000X (physical therapist), no
modifiers, for a traditional Medicare patient.

## Use instead
Modifier GY on the line (no ABN needed), or a voluntary ABN and GX (with or without GY); keep the signed
ABN on file (DOC-15).
"""

from __future__ import annotations

from needlecheck.mappings.liability_modifiers import LiabilityRoute, liability_modifiers_on, modifiers_by_route
from needlecheck.plugin.context import BillingContext, ServiceLine
from needlecheck.plugin.families import Family
from needlecheck.plugin.findings import Finding, Severity, Topic
from needlecheck.plugin.medicare import furnished_only_by_ineligible
from needlecheck.plugin.payer import PayerClass, payer_of
from needlecheck.plugin.rule import Precedence, Rule
from needlecheck.plugin.wording import join_words, upper_first


def check_medicare_statutory_exclusion(context: BillingContext) -> list[Finding]:
    """A finding for each Medicare dry-needling line furnished by a PT or chiropractor and billed wrongly."""
    payer = payer_of(context)
    if not payer.is_medicare:
        return []
    findings: list[Finding] = []
    for line in context.dry_needling_lines:
        types = furnished_only_by_ineligible(line)
        if not types:
            continue
        who = join_words(sorted(kind.replace("-", " ") for kind in types))
        if payer.payer_class is PayerClass.MEDICARE_ADVANTAGE:
            findings.append(_advantage(line, who))
            continue
        if context.hook == "order-sign":
            findings.append(_order(line, who))
            continue
        finding = _fee_for_service(line, who)
        if finding is not None:
            findings.append(finding)
    return findings


def _short(who: str) -> str:
    """"a physical therapist's", or for several kinds of performer a phrase that fits a summary."""
    return f"a {who}'s" if " and " not in who else "a therapist's or chiropractor's"


def _fee_for_service(line: ServiceLine, who: str) -> Finding | None:
    present = liability_modifiers_on(line.modifiers)
    wrong = [row.modifier for row in present if row.route is LiabilityRoute.NOT_REASONABLE_AND_NECESSARY]
    right = [row.modifier for row in present if row.route is LiabilityRoute.STATUTORY_EXCLUSION]
    expected = " or ".join(sorted(modifiers_by_route(LiabilityRoute.STATUTORY_EXCLUSION), reverse=True))  # GY or GX
    why = (
        f"**{upper_first(line.label)}** ({line.code}) was furnished by a {who}. Medicare never pays for dry "
        "needling by a physical therapist or a chiropractor (MC-07): it is outside every Medicare benefit, "
        "a statutory exclusion.\n\n"
    )
    advice = (
        "Bill it with **GY** (no ABN needed), or give a voluntary ABN and bill with **GX** (GX with GY is "
        "allowed) and keep the signed ABN on file (MC-11, MC-12, DOC-15)."
    )
    if wrong:
        mods = join_words(wrong)
        summary = f"Replace {mods} with {expected}: {_short(who)} dry needling is excluded by statute"
        detail = why + (f"{mods} declares a not-reasonable-and-necessary denial, which does not fit a service no "
                        "benefit covers; the MAC may then refuse to make the patient liable. ") + advice
        return RULE.finding(line, summary, detail, decisive=True)
    if right:
        return None
    summary = f"Add {expected}: {_short(who)} dry needling is excluded by statute, never paid"
    return RULE.finding(line, summary, why + advice, decisive=True)


def _order(line: ServiceLine, who: str) -> Finding:
    """An order carries no modifiers: what to do before the service is the voluntary ABN."""
    summary = f"Give a voluntary ABN before the service: {_short(who)} dry needling is never paid"
    detail = (
        f"**{upper_first(line.label)}** ({line.code}) is to be furnished by a {who}. Medicare never pays for "
        "dry needling by a physical therapist or a chiropractor (MC-07): it is outside every Medicare benefit, "
        "a statutory exclusion.\n\nIf the patient chooses to have it, give a voluntary ABN before the service "
        "and keep the signed ABN on file (DOC-15); the claim will then carry GX (with or without GY), or GY "
        "alone without an ABN (MC-11, MC-12)."
    )
    return RULE.finding(line, summary, detail, decisive=True)


def _advantage(line: ServiceLine, who: str) -> Finding:
    summary = f"Check the plan's rules first: its NCD excludes {_short(who)} dry needling"
    detail = (
        f"**{upper_first(line.label)}** ({line.code}) was furnished by a {who}. NCD 30.3.3, which Medicare "
        "Advantage plans follow (MC-08), lets only physicians, and PAs, NPs/CNSs or auxiliary personnel with "
        "acupuncture credentials, furnish acupuncture and dry needling (MC-06); Medicare never covers a "
        "physical therapist's or a chiropractor's dry needling (MC-07). Check the plan's rules before the "
        "service; do not add ABN modifiers for an MA enrollee (MC-14)."
    )
    return RULE.finding(line, summary, detail, decisive=True)


RULE = Rule(
    rule_id="DN-MCR-004",
    title="Medicare: statutory exclusion for PT or chiropractor",
    severity=Severity.WARNING,
    topic=Topic.COVERAGE,
    family=Family.COVERAGE,
    checks="A Medicare dry-needling line furnished by a physical therapist or chiropractor is billed as a "
           "statutory exclusion (GY, or GX after a voluntary ABN), never with GA or GZ.",
    source_ids=("MC-07", "MC-06", "MC-11", "MC-12", "MC-08", "MC-14"),
    can_fix=False,
    check=check_medicare_statutory_exclusion,
    precedence=Precedence.STATUTORY_EXCLUSION,
)
