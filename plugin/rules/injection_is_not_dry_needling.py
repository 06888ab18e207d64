"""DN-CODE-003: a service in which a drug was injected is a trigger-point injection.

## What it does
Reports a dry-needling line whose Procedure records a drug as used, sorted by what the record proves
(``plugin.fhir_injectates``):

- **Injected** (warning, with 20552 or 20553 offered as the recommended change when the muscles are all
  named): a drug whose route, method, dose form or product name says injection ("intramuscular route",
  "solution for injection", "injectable" ...), used by the Procedure or given in a MedicationAdministration
  recorded for it (``usedReference`` to it, or its ``partOf`` naming the Procedure).
- **Route unknown** (``info``, no change offered): a drug given only as an ingredient or substance
  (an RxNorm, NDC, ATC or UNII code, a SNOMED CT substance or product, a Medication or Substance
  reference without an injectable form), or an administration without a route. Lidocaine is injected
  for trigger-point injections but is also a topical anaesthetic, and an antiseptic may be recorded as
  an administration, so neither proves an injection; the card asks.
- Nothing for devices (needles, an electrical-stimulation unit), unknown local codes, and anything whose
  name, form or route says it stayed on the skin (chlorhexidine skin prep, topical, cutaneous ...).

Decision: a recommended code change needs the injection itself on record (an injection route or an
injectable form), because a coder who follows it bills an injection; a drug's name, or an administration
that does not say how, is evidence enough only for a question. Free-text notes are not read: "no
injection" and "injected" differ by a word that plain matching gets wrong.

## Why is this bad?
20560 and 20561 are "needle insertion(s) without injection(s)". With an injectate the service is a
trigger-point injection (20552 for 1-2 muscles, 20553 for 3 or more); dry needling cannot be billed
as a trigger-point injection either, because that needs an injected agent.

## Example
20560 for two muscles with "Lidocaine HCl 1% injection" recorded as used (warning, change to 20552);
20560 with the RxNorm ingredient lidocaine only (info: was it injected?).

## Use instead
20552/20553 when a drug was injected; otherwise state "no injectate" in the note, and record a skin
prep as topical.
"""

from __future__ import annotations

from needlecheck.mappings.cpt import TRIGGER_POINT_INJECTION, codes_in_family, cpt_codes
from needlecheck.plugin.context import BillingContext, ServiceLine
from needlecheck.plugin.families import Family
from needlecheck.plugin.findings import CodeChange, Finding, Severity, Topic
from needlecheck.plugin.rule import Precedence, Rule
from needlecheck.plugin.wording import join_words, upper_first


def _injection_code(line: ServiceLine) -> str | None:
    muscles = line.muscles
    # Only verified SNOMED CT rows may decide a recommended code (see DN-CODE-001).
    if not (muscles.confirmed and muscles.count):
        return None
    return next((code for code in codes_in_family(TRIGGER_POINT_INJECTION)
                 if cpt_codes()[code].fits_muscle_count(muscles.count)), None)


def _injected(line: ServiceLine) -> Finding:
    substances = join_words(list(line.injected_substances))
    injection_code = _injection_code(line)
    summary = f"Bill {injection_code or '20552/20553'}, not {line.code}: an injection is recorded"
    detail = (
        f"**{upper_first(line.label)}** records **{substances}** as injected. {line.code} is needle "
        "insertion *without* injection; with an injectate the service is a trigger-point injection "
        "(20552 for 1-2 muscles, 20553 for 3 or more). If nothing was injected, correct the record "
        "and state \"no injectate\" in the note."
    )
    fix = CodeChange(line.resource_ref, line.code, injection_code, line.item_sequence) if injection_code else None
    return RULE.finding(line, summary, detail, fix)


def _route_unknown(line: ServiceLine) -> Finding:
    drugs = join_words(list(line.drugs_route_unknown))
    summary = f"Confirm nothing was injected: a drug is recorded with {line.code}"
    detail = (
        f"**{upper_first(line.label)}** records **{drugs}** as used, without saying how it was given. If it "
        "was injected, the service is a trigger-point injection (20552 for 1-2 muscles, 20553 for 3 or "
        f"more), not {line.code}. If it was applied to the skin, record the route as topical; if nothing "
        "was injected, state \"no injectate\" in the note and keep the code."
    )
    return RULE.finding(line, summary, detail, severity=Severity.INFO)


def check_injection_is_not_dry_needling(context: BillingContext) -> list[Finding]:
    """A finding for each dry-needling line that records an injected drug, or a drug given by an unknown route."""
    findings: list[Finding] = []
    for line in context.dry_needling_lines:
        if line.injected_substances:
            findings.append(_injected(line))
        elif line.drugs_route_unknown:
            findings.append(_route_unknown(line))
    return findings


RULE = Rule(
    rule_id="DN-CODE-003",
    title="Injected substance recorded on a dry-needling service",
    severity=Severity.WARNING,
    topic=Topic.CLAIM,
    family=Family.CODING,
    checks="A 20560/20561 Procedure records no injected drug (usedCode/usedReference, a MedicationAdministration).",
    source_ids=("CS-03",),
    can_fix=True,
    check=check_injection_is_not_dry_needling,
    precedence=Precedence.CODE_CHOICE,
)
