"""DN-MCR-006: PAs, NPs, CNSs and auxiliary personnel need acupuncture credentials under NCD 30.3.3.

## What it does
For a dry-needling line of a Medicare (fee-for-service or Medicare Advantage) patient on or after
2020-01-21, when no performer is coded as a physician:

- a physician assistant, nurse practitioner or clinical nurse specialist with no acupuncturist
  qualification in the record: ``info``, the NCD's acupuncture degree and license cannot be verified;
- an acupuncturist only (auxiliary personnel): ``info``, the service must be furnished under the
  supervision that 42 CFR 410.26/410.27 require and billed by the supervising practitioner.

Lines with no recognised performer are not reported; physical therapists and chiropractors are DN-MCR-004's.

## Why is this bad?
NCD 30.3.3 lets PAs, NPs/CNSs and auxiliary personnel furnish acupuncture, dry needling included, only
with both a master's or doctoral degree in acupuncture or Oriental Medicine from an ACAOM-accredited
school and a current, full, active and unrestricted acupuncture license (MC-06); a reviewer asks for both
(DOC-08). A FHIR record rarely carries them, so this is a reminder, not a denial.

## Example
A 20560 claim line performed by a Practitioner with NUCC taxonomy 363L00000X (nurse practitioner) only.

## Use instead
Record the acupuncture license as a Practitioner.qualification (the acupuncturist taxonomy 171100000X),
keep the ACAOM degree on file, or have a physician furnish the service.
"""

from __future__ import annotations

from needlecheck.mappings.medicare_ncd import ncd_in_force
from needlecheck.plugin.context import BillingContext, ServiceLine
from needlecheck.plugin.families import Family
from needlecheck.plugin.findings import Finding, Severity, Topic
from needlecheck.plugin.medicare import NEEDS_ACUPUNCTURE_CREDENTIALS
from needlecheck.plugin.payer import payer_of
from needlecheck.plugin.performer import ProviderType, provider_types
from needlecheck.plugin.rule import Precedence, Rule
from needlecheck.plugin.wording import join_words, upper_first


def check_medicare_practitioner_credentials(context: BillingContext) -> list[Finding]:
    """An ``info`` finding for each Medicare dry-needling line whose practitioner needs unseen credentials."""
    if not payer_of(context).is_medicare:
        return []
    findings: list[Finding] = []
    for line in context.dry_needling_lines:
        if not ncd_in_force(context.date_of(line)):
            continue
        types = provider_types(line)
        if ProviderType.PHYSICIAN in types:
            continue
        if types & NEEDS_ACUPUNCTURE_CREDENTIALS and ProviderType.ACUPUNCTURIST not in types:
            findings.append(_credentials(line, types & NEEDS_ACUPUNCTURE_CREDENTIALS))
        elif types == {ProviderType.ACUPUNCTURIST}:
            findings.append(_auxiliary(line))
    return findings


def _credentials(line: ServiceLine, types: frozenset[ProviderType]) -> Finding:
    who = join_words(sorted(kind.replace("-", " ") for kind in types))
    named = f"a {who}" if len(types) == 1 else "a PA, NP or CNS"
    summary = f"Confirm the acupuncture degree and license: {named} needs both for coverage"
    detail = (
        f"**{upper_first(line.label)}** ({line.code}) was furnished by a {who}. Under NCD 30.3.3 a PA, NP or "
        "CNS may furnish acupuncture, dry needling included, only with both a master's or doctoral degree in "
        "acupuncture or Oriental Medicine from an ACAOM-accredited school and a current, full, active and "
        "unrestricted acupuncture license (MC-06). The record does not show them; keep both on file (DOC-08)."
    )
    return RULE.finding(line, summary, detail)


def _auxiliary(line: ServiceLine) -> Finding:
    summary = "Confirm the required supervision: an acupuncturist furnishes it only as auxiliary personnel"
    detail = (
        f"**{upper_first(line.label)}** ({line.code}) was furnished by an acupuncturist. NCD 30.3.3 lets "
        "auxiliary personnel with an ACAOM-accredited acupuncture degree and a current acupuncture license "
        "furnish acupuncture only under the supervision of a physician, PA, NP or CNS that 42 CFR 410.26 and "
        "410.27 require, billed by that practitioner (MC-06, DOC-08)."
    )
    return RULE.finding(line, summary, detail)


RULE = Rule(
    rule_id="DN-MCR-006",
    title="Medicare: practitioner's acupuncture credentials",
    severity=Severity.INFO,
    topic=Topic.COVERAGE,
    family=Family.PRACTITIONER,
    checks="A Medicare dry-needling line furnished by a PA, NP, CNS or acupuncturist shows the NCD 30.3.3 "
           "credentials and supervision (reminder).",
    source_ids=("MC-06",),
    can_fix=False,
    check=check_medicare_practitioner_credentials,
    precedence=Precedence.DOCUMENTATION,
    needs_coverage=True,
)
