"""Which Claims a scan checks: those created in the date range that bill dry needling or a code it hides under."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import cache
from typing import Any

from needlecheck.mappings.cpt import CPT_SYSTEM, DRY_NEEDLING, codes_in_family
from needlecheck.mappings.dry_needling_substitutes import substitutes


@dataclass(frozen=True)
class DateRange:
    """``--since`` and ``--until``, both inclusive, on ``Claim.created``."""

    since: dt.date | None = None
    until: dt.date | None = None

    def contains(self, created: object) -> bool:
        """Whether a Claim created on ``created`` (a FHIR date or dateTime) is in the range."""
        if self.since is None and self.until is None:
            return True
        if not isinstance(created, str) or len(created) < 10:
            return False  # a Claim without a usable date cannot be placed in a range
        day = created[:10]
        return not ((self.since and day < self.since.isoformat()) or (self.until and day > self.until.isoformat()))


@cache
def _codes_checked() -> frozenset[str]:
    # Dry needling billed under another code (DN-CODE-005) is dry needling too: such a claim is scanned.
    return frozenset(codes_in_family(DRY_NEEDLING)).union(*(row.codes for row in substitutes()))


def is_candidate(claim: dict[str, Any]) -> bool:
    """Whether a Claim has a line coded 20560/20561 or with a code dry needling is wrongly billed under."""
    wanted = _codes_checked()
    for item in claim.get("item") or []:
        concept = item.get("productOrService") if isinstance(item, dict) else None
        for coding in (concept.get("coding") or []) if isinstance(concept, dict) else []:
            if isinstance(coding, dict) and coding.get("system") == CPT_SYSTEM and coding.get("code") in wanted:
                return True
    return False
