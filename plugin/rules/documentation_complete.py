"""DN-DOC-010: the order or Procedure documents every element that supports a dry-needling service.

## What it does
Compares what a dry-needling line documents with `mappings/documentation_elements.csv` and reports, in
**one** card per order or claim line, the elements that are missing: the ones required for this line's
payer first (payer class or policy pack, from `mappings/documentation_requirements.csv`, on the date
of service), then the ones a professional source requires, then the good-practice ones, each with where
FHIR carries it and its source. The card is a warning when a payer-required element is missing and `info`
otherwise.

An order (a ServiceRequest, or a claim line that bills no Procedure) is only asked for what an order can
carry: symptom duration, trigger point findings, the plan of care. Muscles with their sides and the
indication are left out of this card because DN-DOC-001, DN-DOC-002 and DN-DOC-003 already report them.
What the line documents comes from `line.documented` (filled by `plugin.fhir_documentation`) plus the
performer's qualification codes on the line.

Decisions (issue 9): by default only the elements the payer requires (a warning) and the ones a
professional source requires (``info``, below) make a card; good-practice elements join the card only
when the administrator sets ``[documentation] good_practice_elements = true`` (an ``info`` card when they
are all that is missing), so a correctly documented request gets no card. Medicare's NCD 30.3.3 elements
are asked only for lines the NCD could cover. Precedence: documentation, the last family; the engine
drops the card when a decisive finding says the payer will not pay the line. The summary names no payer.

Informed consent (DOC-14) is professionally required: the ACA billing article (Hamm, DOC-14-ACA) says
"consent is mandatory", but no payer criterion found makes it one. Decision: it sits between the two
levels. A performed Procedure that does not show it gets it as one `info` item of this same card (no
extra card; the card is `info` when consent is all that is missing, and consent joins a payer's warning
card as a further item), whatever the good-practice setting, so a correctly documented request still
gets no card. It shows as a treatment Consent referenced by the Procedure or present in the request, or
"consent" in the Procedure's notes or report text (`plugin.fhir_documentation`); the service does not
search the FHIR server for Consent resources, so a site that records consent only there sees this item
until that search exists. An order is not asked (consent is shown by the performed session), and like
the rest of the card the item is dropped when a decisive finding says the payer will not pay the line.

## Why is this bad?
Payers and auditors deny or recoup a service whose record does not support it: Medicare covers dry
needling only for low back pain of 12 weeks or more furnished by an eligible practitioner (NCD 30.3.3);
the other elements (no injectate, technique, response, outcome, plan, consent) are what defends the
code and the medical necessity when the claim is reviewed.

## Example
A Medicare claim line for 20560 whose Procedure has a reason code but no Condition with an onset, and no
performer: symptom duration and provider qualification are required and missing.

## Use instead
Reference the indication's Condition with its `onset[x]`, name the performer with their qualification,
and record the rest in the Procedure (`note`, `usedCode`, `complication`, `followUp`, `outcome`,
`basedOn` a CarePlan, a treatment Consent).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import replace

from needlecheck.mappings.documentation import (
    ElementRequirement,
    Requirement,
    documentation_elements,
    documentation_requirements,
    requirement_for,
)
from needlecheck.mappings.sources import PolicySource, policy_source
from needlecheck.plugin.context import BillingContext, ServiceLine
from needlecheck.plugin.families import Family
from needlecheck.plugin.findings import Finding, Severity, Topic
from needlecheck.plugin.medicare import ncd_can_cover
from needlecheck.plugin.payer import UNKNOWN_PAYER, Payer, PayerClass, payer_of
from needlecheck.plugin.rule import Precedence, Rule
from needlecheck.plugin.wording import iso, upper_first

# Elements the service line itself shows, without a look at the FHIR documentation.
SHOWN_BY_THE_LINE: dict[str, Callable[[ServiceLine], bool]] = {
    "muscles-named": lambda line: bool(line.body_sites),
    "indication": lambda line: bool(line.indications),
    "provider-qualification": lambda line: any(performer.codes for performer in line.performers),
}
PAYER_CLASS_NAMES = {
    PayerClass.MEDICARE_FFS: "Medicare (fee-for-service)",
    PayerClass.MEDICARE_ADVANTAGE: "Medicare Advantage",
    PayerClass.MEDICAID: "Medicaid",
    PayerClass.TRICARE: "TRICARE",
    PayerClass.COMMERCIAL: "a commercial payer",
    PayerClass.WORKERS_COMP: "workers' compensation",
    PayerClass.OTHER: "another payer",
    PayerClass.UNKNOWN: "an unidentified payer",
}


def requirements_payer(payer: Payer, line: ServiceLine, context: BillingContext) -> Payer:
    """The payer whose requirements apply to the line: Medicare's NCD 30.3.3 elements (symptom duration,
    the practitioner's eligibility) only where the NCD could cover it; a physical therapist's line billed
    GY, or one for neck pain, is asked only what every payer shares."""
    if payer.is_medicare and not ncd_can_cover(context, line):
        return UNKNOWN_PAYER
    return payer


_ORDER = {Requirement.REQUIRED: 0, Requirement.PROFESSIONALLY_REQUIRED: 1, Requirement.GOOD_PRACTICE: 2}
ALWAYS_LISTED = frozenset({Requirement.REQUIRED, Requirement.PROFESSIONALLY_REQUIRED})


def missing_elements(line: ServiceLine, payer: Payer, context: BillingContext,
                     good_practice: bool = True) -> list[ElementRequirement]:
    """The elements this line should show and does not (its FHIR documentation, or what the line itself carries):
    payer-required ones first, then professionally required, then good practice (unless ``good_practice`` is
    False), each group in table order."""
    asked = _asked_of(payer.payer_class.value, payer.pack, context.date_of(line), line.is_procedure_record,
                      good_practice)
    documented = line.documented
    return [requirement for element_id, requirement in asked if element_id not in documented
            and ((shown := SHOWN_BY_THE_LINE.get(element_id)) is None or not shown(line))]


# What ``_asked_of`` worked out, for the tables it was worked out from (a test may load others).
_ASKED: dict[tuple[str, str | None, dt.date, bool, bool], tuple[tuple[str, ElementRequirement], ...]] = {}
_ASKED_OF_TABLES: list[object] = []


def _asked_of(payer_class: str, pack: str | None, day: dt.date, is_procedure_record: bool,
              good_practice: bool = True) -> tuple[tuple[str, ElementRequirement], ...]:
    """Every element a line of this kind is asked for on ``day`` by this payer, with its requirement, in the order
    ``missing_elements`` lists them (without the good-practice ones unless ``good_practice``): the same for every
    line of a payer and day, so worked out once per process."""
    elements, requirements_table = documentation_elements(), documentation_requirements()
    if len(_ASKED_OF_TABLES) != 2 or _ASKED_OF_TABLES[0] is not elements \
            or _ASKED_OF_TABLES[1] is not requirements_table or len(_ASKED) > 4096:
        _ASKED.clear()  # a year of days for a few payers is far less
        _ASKED_OF_TABLES[:] = [elements, requirements_table]
    key = (payer_class, pack, day, is_procedure_record, good_practice)
    asked = _ASKED.get(key)
    if asked is None:
        requirements = [
            (element.element_id, requirement_for(element, payer_class, pack, day))
            for element in elements.values()
            if not element.covered_by and element.period.covers(day) and element.applies_to_line(is_procedure_record)
        ]
        ordered = sorted(requirements, key=lambda item: _ORDER[item[1].requirement])
        asked = _ASKED[key] = tuple(item for item in ordered if good_practice or item[1].requirement in ALWAYS_LISTED)
    return asked


def _summary(missing: list[ElementRequirement]) -> str:
    required = sum(item.requirement is Requirement.REQUIRED for item in missing)
    professional = [item for item in missing if item.requirement is Requirement.PROFESSIONALLY_REQUIRED]
    advised = len(missing) - required - len(professional)
    if required:
        plural = "s" if required != 1 else ""
        return f"Document the {required} element{plural} the payer requires (listed in the detail)"
    if len(professional) == 1:
        return f"Document {professional[0].element.label}: professional guidance requires it"
    if professional:
        return f"Document the {len(professional)} elements professional guidance requires (listed in the detail)"
    plural = "s" if advised != 1 else ""
    return f"Consider documenting {advised} good-practice element{plural} (listed in the detail)"


def _bullet(item: ElementRequirement) -> str:
    sources = ", ".join(f"[{s.title}]({s.url}) ({s.confidence})" for s in _sources_of(item))
    statement = item.statement
    if not statement and item.requirement is Requirement.PROFESSIONALLY_REQUIRED:
        statement = _sources_of(item)[0].statement  # the professional source's own words are the reason
    why = f" {statement}" if statement else ""
    return f"- **{upper_first(item.element.label)}**. In FHIR: {item.element.fhir_location}.{why} Source: {sources}."


def _sources_of(item: ElementRequirement) -> tuple[PolicySource, ...]:
    return tuple(policy_source(source_id) for source_id in item.source_ids)


def _payer_text(payer: Payer) -> str:
    kind = PAYER_CLASS_NAMES[payer.payer_class]
    if payer.payer_class is PayerClass.UNKNOWN:
        return "The payer is not identified, so only the requirements every payer shares apply."
    named = f"**{payer.name}**, {kind}" if payer.name else f"**{upper_first(kind)}**"
    return f"Payer: {named}."


def _detail(line: ServiceLine, payer: Payer, missing: list[ElementRequirement], day: str) -> str:
    required = [item for item in missing if item.requirement is Requirement.REQUIRED]
    professional = [item for item in missing if item.requirement is Requirement.PROFESSIONALLY_REQUIRED]
    advised = [item for item in missing if item.requirement is Requirement.GOOD_PRACTICE]
    blocks = [f"**{upper_first(line.label)}** ({line.code}, {day}) does not show every documentation element "
              f"that supports the service. {_payer_text(payer)}"]
    if required:
        blocks.append("**Required** (a payer or auditor criterion):\n" + "\n".join(map(_bullet, required)))
    if professional:
        blocks.append("**Required by professional guidance** (not a payer criterion):\n"
                      + "\n".join(map(_bullet, professional)))
    if advised:
        blocks.append("**Good practice**:\n" + "\n".join(map(_bullet, advised)))
    if not line.is_procedure_record:
        blocks.append("An order is asked only for what it can carry; the rest is checked on the Procedure.")
    blocks.append("Muscles, their sides and the indication are checked by DN-DOC-001, DN-DOC-002 and DN-DOC-003.")
    return "\n\n".join(blocks)


def check_documentation_complete(context: BillingContext) -> list[Finding]:
    """One finding per dry-needling line listing every missing documentation element."""
    lines = context.dry_needling_lines
    if not lines:
        return []
    findings: list[Finding] = []
    for line in lines:
        payer = requirements_payer(payer_of(context), line, context)
        missing = missing_elements(line, payer, context, context.options.good_practice_elements)
        if not missing:
            continue
        required = any(item.requirement is Requirement.REQUIRED for item in missing)
        finding = RULE.finding(line, _summary(missing),
                               _detail(line, payer, missing, iso(context.date_of(line))),
                               severity=Severity.WARNING if required else Severity.INFO)
        cited = tuple(dict.fromkeys(source for item in missing for source in _sources_of(item)))
        findings.append(replace(finding, sources=cited))
    return findings


def _all_source_ids() -> tuple[str, ...]:
    ids = [s for element in documentation_elements().values() if not element.covered_by for s in element.source_ids]
    ids += [s for row in documentation_requirements() for s in row.source_ids]
    return tuple(dict.fromkeys(ids))


RULE = Rule(
    rule_id="DN-DOC-010",
    title="Documentation incomplete",
    severity=Severity.WARNING,
    topic=Topic.CLAIM,
    family=Family.DOCUMENTATION,
    checks="A 20560/20561 order or Procedure documents the elements its payer requires and good practice advises.",
    source_ids=_all_source_ids(),
    can_fix=False,
    check=check_documentation_complete,
    precedence=Precedence.DOCUMENTATION,
    needs_coverage=True,
)
