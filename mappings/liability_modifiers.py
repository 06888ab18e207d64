"""Medicare's beneficiary-liability modifiers GA, GX, GY and GZ: what each says and which may go together."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from pathlib import Path

from needlecheck.mappings.errors import MappingError
from needlecheck.mappings.provenance import parse_confidence
from needlecheck.mappings.tables import DATA_DIR, parse_choice, parse_https_url, read_table

MODIFIERS_FILE = DATA_DIR / "liability_modifiers.csv"


class LiabilityRoute(StrEnum):
    """Why Medicare will not pay: the service is outside every benefit, or not reasonable and necessary."""

    STATUTORY_EXCLUSION = "statutory-exclusion"
    NOT_REASONABLE_AND_NECESSARY = "not-reasonable-and-necessary"


@dataclass(frozen=True)
class LiabilityModifier:
    """One row of ``liability_modifiers.csv``.

    ``abn`` is whether the modifier says an ABN was given (mandatory, voluntary) or none was;
    ``exclusive`` marks the modifiers that must not share a line with each other (GA, GY, GZ).
    """

    modifier: str
    meaning: str
    route: LiabilityRoute
    abn: str
    exclusive: bool
    catalog_id: str
    source_title: str
    source_url: str
    confidence: str


def load_liability_modifiers(path: Path = MODIFIERS_FILE) -> dict[str, LiabilityModifier]:
    """Read and validate the modifier table."""
    modifiers: dict[str, LiabilityModifier] = {}
    required = ("modifier", "meaning", "route", "abn", "exclusive", "catalog_id", "source_title", "source_url",
                "confidence")
    routes = frozenset(route.value for route in LiabilityRoute)
    for row_number, row in read_table(path, required):
        modifier = row["modifier"].upper()
        if len(modifier) != 2 or not modifier.isalnum():
            problem = f"'{row['modifier']}' is not a two-character modifier"
            raise MappingError(path.name, row_number, "modifier", problem)
        if modifier in modifiers:
            raise MappingError(path.name, row_number, "modifier", f"{modifier} appears twice")
        modifiers[modifier] = LiabilityModifier(
            modifier=modifier,
            meaning=row["meaning"],
            route=LiabilityRoute(parse_choice(path, row_number, "route", row["route"], routes)),
            abn=parse_choice(path, row_number, "abn", row["abn"], frozenset({"mandatory", "voluntary", "none"})),
            exclusive=parse_choice(path, row_number, "exclusive", row["exclusive"], frozenset({"yes", "no"})) == "yes",
            catalog_id=row["catalog_id"],
            source_title=row["source_title"],
            source_url=parse_https_url(path, row_number, "source_url", row["source_url"]),
            confidence=parse_confidence(path, row_number, row["confidence"]),
        )
    return modifiers


@cache
def liability_modifiers() -> dict[str, LiabilityModifier]:
    """The shipped modifier table, loaded once per process."""
    return load_liability_modifiers()


def liability_modifiers_on(modifiers: tuple[str, ...]) -> tuple[LiabilityModifier, ...]:
    """The liability modifiers among a line's modifiers, in table order."""
    present = {modifier.strip().upper() for modifier in modifiers}
    return tuple(row for code, row in liability_modifiers().items() if code in present)


def modifiers_by_route(route: LiabilityRoute) -> tuple[str, ...]:
    """The modifier codes that belong to one route, e.g. GX and GY for a statutory exclusion."""
    return tuple(code for code, row in liability_modifiers().items() if row.route is route)
