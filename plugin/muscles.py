"""Reducing body sites to muscles and counting the distinct muscles treated.

CPT 20560/20561 count muscles, not needles: left and right of one muscle are two muscles, several
points in one muscle count once, and group or region concepts ("erector spinae", "muscle of back")
never count because payers need every muscle named.

A muscle counts as *confirmed* when at least one of its sites uses a verified SNOMED CT row
(``verified = yes`` in ``mappings/snomed_muscles.csv``); a muscle known only from ``partial`` rows
(UBERON cross-references whose SNOMED term was never seen) is counted, but ``MuscleCount.unconfirmed``
names it, so a rule can tell a count that rests on unverified codes from one that does not.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache

from needlecheck.mappings.muscles import MuscleCatalog, MuscleConcept, Side, muscle_catalog
from needlecheck.plugin.terms import BodySite

LATERALITY_ATTRIBUTE = "272741003"


class SiteProblem(StrEnum):
    """Why a body site could not be counted as a muscle."""

    GROUP = "group"
    UNMAPPED = "unmapped"
    TEXT_ONLY = "text-only"


@dataclass(frozen=True)
class TreatedSite:
    """A body site reduced to (muscle, side, kind); ``problem`` is set when it names no single muscle."""

    body_site: BodySite
    muscle: str | None
    side: Side
    concept: MuscleConcept | None
    problem: SiteProblem | None = None


@dataclass(frozen=True)
class MuscleCount:
    """The distinct (muscle, side) pairs treated, and the sites that could not be counted."""

    muscles: tuple[tuple[str, Side], ...]
    uncountable: tuple[TreatedSite, ...]
    unsided: tuple[TreatedSite, ...]
    # Sites of the muscles that only ``partial`` (unverified) SNOMED rows name, one per muscle and side.
    unconfirmed: tuple[TreatedSite, ...] = ()

    @property
    def count(self) -> int:
        """How many muscles the named sites show were treated (unverified codes included)."""
        return len(self.muscles)

    @property
    def established(self) -> bool:
        """True when every site named a muscle, so ``count`` is the whole count."""
        return not self.uncountable

    @property
    def confirmed_count(self) -> int:
        """How many muscles verified SNOMED CT rows prove were treated."""
        return self.count - len(self.unconfirmed)

    @property
    def confirmed(self) -> bool:
        """True when every counted muscle rests on a verified row and every site named a muscle."""
        return self.established and not self.unconfirmed


_TERM = re.compile(r"\|[^|]*\|")


@lru_cache(maxsize=4096)  # records repeat the same few dozen muscle codes
def parse_expression(code: str) -> tuple[str, str | None]:
    """Split a SNOMED CT expression into its focus concept and the value of its laterality refinement.

    Accepts a plain concept id and compositional-grammar forms such as
    ``31764008:272741003=7771000`` or ``31764008 |Trapezius| : { 272741003 |Laterality| = 7771000 |Left| }``.
    """
    plain = _TERM.sub("", code).replace(" ", "").replace("{", "").replace("}", "")
    plain = plain.removeprefix("===").removeprefix("<<<")
    focus, _, refinement = plain.partition(":")
    focus = focus.split("+")[0]
    side_code = None
    for attribute_value in refinement.split(","):
        attribute, _, value = attribute_value.partition("=")
        if attribute == LATERALITY_ATTRIBUTE and value:
            side_code = value
    return focus, side_code


def _combine(sides: Iterable[Side]) -> Side:
    # Midline is where a site lies, not which of a paired muscle's two sides: it names no side.
    found = {side for side in sides if side not in (Side.UNSPECIFIED, Side.MIDLINE)}
    if Side.BOTH in found or {Side.LEFT, Side.RIGHT} <= found:
        return Side.BOTH
    return next(iter(sorted(found)), Side.UNSPECIFIED)


def reduce_body_site(site: BodySite, catalog: MuscleCatalog | None = None) -> TreatedSite:
    """Reduce one body site to (muscle, side, kind).

    The side comes from a pre-coordinated left/right concept, a laterality refinement in a
    post-coordinated expression, or laterality qualifiers carried beside the site, in that order.
    """
    return _reduce_by_shipped_catalog(site) if catalog is None else _reduce(site, catalog)


# Records name the same few dozen sites over and over; the shipped catalog never changes in a process.
@lru_cache(maxsize=4096)
def _reduce_by_shipped_catalog(site: BodySite) -> TreatedSite:
    return _reduce(site, muscle_catalog())


def _reduce(site: BodySite, catalog: MuscleCatalog) -> TreatedSite:
    carried = _combine(catalog.side_of_qualifier(code) or Side.UNSPECIFIED for code in site.laterality) \
        if site.laterality else Side.UNSPECIFIED
    group: MuscleConcept | None = None
    for code in site.snomed_codes:
        focus, side_code = parse_expression(code)
        concept = catalog.concept(focus)
        if concept is None:
            continue
        if not concept.names_one_muscle:
            group = group or concept
            continue
        side = concept.side
        if side is Side.UNSPECIFIED and side_code:
            side = _combine((catalog.side_of_qualifier(side_code) or Side.UNSPECIFIED,))
        if side is Side.UNSPECIFIED:
            side = carried
        return TreatedSite(site, concept.canonical_muscle, side, concept)
    if group is not None:
        return TreatedSite(site, None, carried, group, SiteProblem.GROUP)
    problem = SiteProblem.UNMAPPED if site.codings else SiteProblem.TEXT_ONLY
    return TreatedSite(site, None, carried, None, problem)


def count_muscles(sites: Iterable[BodySite], catalog: MuscleCatalog | None = None) -> MuscleCount:
    """Count the distinct muscles treated, keeping side in the key.

    A site without a side adds its muscle only when no sided site names the same muscle: "trapezius"
    next to "left trapezius" proves one muscle, not two.
    """
    if catalog is None:
        return _count_by_shipped_catalog(tuple(sites))
    return _count(sites, catalog)


# A patient's visits name the same sites again and again; a count is a value (frozen, of frozen parts).
@lru_cache(maxsize=4096)
def _count_by_shipped_catalog(sites: tuple[BodySite, ...]) -> MuscleCount:
    return _count(sites, None)


def _count(sites: Iterable[BodySite], catalog: MuscleCatalog | None) -> MuscleCount:
    sides_by_muscle: dict[str, set[Side]] = {}
    unsided_sites: dict[str, list[TreatedSite]] = {}
    uncountable: list[TreatedSite] = []
    # For each (muscle, side): whether a verified row names it, and the first site that names it.
    verified_pairs: set[tuple[str, Side]] = set()
    first_site: dict[tuple[str, Side], TreatedSite] = {}
    for site in sites:
        treated = reduce_body_site(site, catalog)
        if treated.muscle is None:
            uncountable.append(treated)
            continue
        sides = sides_by_muscle.setdefault(treated.muscle, set())
        if treated.side is Side.BOTH:
            added = (Side.LEFT, Side.RIGHT)
            sides.update(added)
        elif treated.side is Side.UNSPECIFIED:
            unsided_sites.setdefault(treated.muscle, []).append(treated)
            added = (Side.UNSPECIFIED,)
        else:
            added = (treated.side,)
            sides.add(treated.side)
        for side in added:
            first_site.setdefault((treated.muscle, side), treated)
            if treated.concept is not None and treated.concept.verified:
                verified_pairs.add((treated.muscle, side))
    pairs: list[tuple[str, Side]] = []
    unsided: list[TreatedSite] = []
    for muscle, sides in sides_by_muscle.items():
        if sides:
            pairs.extend((muscle, side) for side in sides)
        else:
            pairs.append((muscle, Side.UNSPECIFIED))
            unsided.append(unsided_sites[muscle][0])
    # An unsided verified site of a muscle confirms the muscle on whichever side the record gives it.
    verified_muscles = {muscle for muscle, side in verified_pairs if side is Side.UNSPECIFIED}
    unconfirmed = [first_site[pair] for pair in sorted(pairs)
                   if pair not in verified_pairs and pair[0] not in verified_muscles]
    return MuscleCount(muscles=tuple(sorted(pairs)), uncountable=tuple(uncountable), unsided=tuple(unsided),
                       unconfirmed=tuple(unconfirmed))
