"""Phrases that several rules put in front of people, written once."""

from __future__ import annotations

from collections.abc import Iterable

from needlecheck.mappings.muscles import Side


def muscle_list(muscles: Iterable[tuple[str, Side]]) -> str:
    """"left trapezius, right trapezius and levator scapulae" from (muscle, side) pairs."""
    names = [muscle if side is Side.UNSPECIFIED else f"{side} {muscle}" for muscle, side in muscles]
    return join_words(names)


def join_words(words: list[str]) -> str:
    """"a", "a and b", "a, b and c"."""
    if len(words) <= 1:
        return "".join(words)
    return f"{', '.join(words[:-1])} and {words[-1]}"


def iso(day: object) -> str:
    """A date as ISO text, or "an unknown date"."""
    return day.isoformat() if hasattr(day, "isoformat") else "an unknown date"


def upper_first(text: str) -> str:
    """``text`` with its first letter capitalized and the rest untouched (ids keep their case)."""
    return text[:1].upper() + text[1:]
