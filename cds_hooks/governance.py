"""What a site and a call decide about the cards, on top of the rules: settings, CRD configuration, repeats.

The steps run between the engine and the response, in this order: the rule settings (site, then the calling
client) drop disabled rules and set severities; the request's CRD configuration drops switched-off families;
repeat suppression drops findings the user overrode recently; after rendering, ``max-cards`` keeps the most
severe cards.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from needlecheck.cds_hooks.suppression import Suppression
from needlecheck.plugin.rule_settings import RuleSetting


@dataclass(frozen=True)
class Governance:
    """The site's decisions for one call: effective rule settings, and repeat suppression (None: off, no store)."""

    rule_settings: Mapping[str, RuleSetting] = field(default_factory=dict)
    suppression: Suppression | None = None
