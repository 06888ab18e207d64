"""Da Vinci CRD configuration options: what an EHR may switch off per call, and how many cards it wants.

Discovery lists ``extension["davinci-crd.configuration-options"]`` for every service (CRD dev-4..10): one
boolean option per rule family the service can return, plus the integer ``max-cards``. A request may send
``extension["davinci-crd.configuration"]`` (dev-14/15/17): families set to false return no cards, and
``max-cards`` caps the cards, keeping the most severe. The request never has to send it and unknown options
are ignored; a known option of the wrong type is a 400 naming it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from needlecheck.cds_hooks.errors import ApiError
from needlecheck.plugin.families import FAMILY_TEXT, Family
from needlecheck.plugin.findings import Finding, Severity
from needlecheck.plugin.rules import all_rules

OPTIONS_EXTENSION = "davinci-crd.configuration-options"
CONFIGURATION_EXTENSION = "davinci-crd.configuration"
MAX_CARDS = "max-cards"
# A claim has at most 50 lines (an 837P); every line with a card or two still fits.
DEFAULT_MAX_CARDS = 100


@dataclass(frozen=True)
class CallConfiguration:
    """What one request asked for: families switched off, and a cap on the cards (None: the default)."""

    families_off: frozenset[Family] = frozenset()
    max_cards: int = DEFAULT_MAX_CARDS


def service_families() -> tuple[Family, ...]:
    """The families some rule belongs to, in their declared order."""
    used = {rule.family for rule in all_rules()}
    return tuple(family for family in Family if family in used)


def configuration_options() -> list[dict[str, Any]]:
    """The discovery entry's ``davinci-crd.configuration-options``."""
    options: list[dict[str, Any]] = [
        {"code": str(family), "type": "boolean", "name": FAMILY_TEXT[family][0],
         "description": f"{FAMILY_TEXT[family][1]}. Set to false to receive no card of this kind.", "default": True}
        for family in service_families()]
    options.append({"code": MAX_CARDS, "type": "integer", "name": "Maximum cards",
                    "description": "The most cards returned; when more are found the most severe are kept "
                                   "(critical, then warning, then info).", "default": DEFAULT_MAX_CARDS})
    return options


_ALL_ON = CallConfiguration()  # what a request without the extension asks for (most do)


def parse_configuration(body: Any) -> CallConfiguration:
    """The request's ``extension["davinci-crd.configuration"]``, if any; unknown options are ignored."""
    extension = body.get("extension") if isinstance(body, dict) else None
    if not isinstance(extension, dict) or CONFIGURATION_EXTENSION not in extension:
        return _ALL_ON
    where = f"extension.{CONFIGURATION_EXTENSION}"
    value = extension[CONFIGURATION_EXTENSION]
    if not isinstance(value, dict):
        raise ApiError(400, f"'{where}' must be an object of configuration options", expression=where)
    off: set[Family] = set()
    for family in service_families():
        setting = value.get(str(family))
        if setting is None:
            continue
        if not isinstance(setting, bool):
            raise ApiError(400, f"'{where}.{family}' must be true or false", expression=f"{where}.{family}")
        if setting is False:
            off.add(family)
    max_cards = value.get(MAX_CARDS, DEFAULT_MAX_CARDS)
    if not isinstance(max_cards, int) or isinstance(max_cards, bool) or max_cards < 0:
        raise ApiError(400, f"'{where}.{MAX_CARDS}' must be a non-negative integer", expression=f"{where}.{MAX_CARDS}")
    return CallConfiguration(frozenset(off), max_cards)


def without_families_off(findings: list[Finding], configuration: CallConfiguration) -> list[Finding]:
    """``findings`` without those of the families the request switched off."""
    if not configuration.families_off:
        return findings
    family_of = {rule.rule_id: rule.family for rule in all_rules()}
    return [finding for finding in findings if family_of.get(finding.rule_id) not in configuration.families_off]


def _rank(card: dict[str, Any]) -> int:
    try:
        return Severity(card.get("indicator")).rank
    except ValueError:
        return 0


def capped(cards: list[dict[str, Any]], max_cards: int) -> list[dict[str, Any]]:
    """At most ``max_cards`` cards, the most severe first chosen; the kept cards stay in their order."""
    if len(cards) <= max_cards:
        return cards
    chosen = sorted(range(len(cards)), key=lambda index: (-_rank(cards[index]), index))[:max_cards]
    return [cards[index] for index in sorted(chosen)]
