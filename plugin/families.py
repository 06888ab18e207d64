"""Rule families: the kinds of card a rule can produce, which a site or an EHR switches on and off as one.

Da Vinci CRD asks for one configuration option per kind of card a service returns
(``davinci-crd.configuration-options``); each rule declares its family in its ``RULE``.
"""

from __future__ import annotations

from enum import StrEnum


class Family(StrEnum):
    """The kind of problem a rule finds; the value is the CRD configuration option's code."""

    CODING = "coding"
    DOCUMENTATION = "documentation"
    COVERAGE = "coverage"
    PRACTITIONER = "practitioner"
    FREQUENCY = "frequency"
    CODE_PAIRS = "code-pairs"
    MODIFIERS = "modifiers"


FAMILY_TEXT: dict[Family, tuple[str, str]] = {
    Family.CODING: ("Coding cards",
                    "The CPT and ICD-10-CM codes, units and dates of the dry-needling lines"),
    Family.DOCUMENTATION: ("Documentation cards",
                           "Muscles named one by one with their side, an indication, and the documentation "
                           "elements the payer requires"),
    Family.COVERAGE: ("Coverage cards",
                      "Whether the payer covers dry needling on the date of service (payer policy, Medicare NCD "
                      "30.3.3 and its statutory exclusion)"),
    Family.PRACTITIONER: ("Practitioner cards",
                          "Whether the furnishing clinician may dry needle (scope of practice, Medicare "
                          "credentials)"),
    Family.FREQUENCY: ("Frequency cards", "Session caps of the payer and unit limits per date (MUE)"),
    Family.CODE_PAIRS: ("Code-pair cards",
                        "Codes billed on the same date that do not go with dry needling (NCCI edits, trigger-point "
                        "injection, acupuncture, E/M without modifier 25, electrical stimulation)"),
    Family.MODIFIERS: ("Modifier cards", "Modifiers on the dry-needling line (50, GA/GY/GZ, ABN modifiers)"),
}
