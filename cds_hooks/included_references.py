"""Resources a prefetch query ``_include``s, read by reference when the answer left them out.

Support for ``_include`` is optional in FHIR R4 (a server lists what it honours in its
CapabilityStatement): Medplum's repository ignores ``_include`` altogether. Without the payor Organization
or the practice Location a rule would decide on less than the record holds, so when the service's own
search comes back without them, the references an ``_include`` names are read one by one.

Unless the server says it honoured the ``_include``: a searchset Bundle's ``self`` link carries the parameters
the server actually used to process the search (https://hl7.org/fhir/R4/search.html, "Handling Errors"). A
server that used the ``_include`` and still left a resource out does not hold it (or does not show it to this
client), and reading it again would only add a round of queries that finds nothing.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote_plus, urlsplit

# The element each ``_include`` the prefetch templates use follows (FHIR R4 search parameter expressions).
INCLUDE_PATHS: dict[str, tuple[str, ...]] = {
    "Coverage:payor": ("payor",),
    "Encounter:location": ("location", "location"),
    "Encounter:service-provider": ("serviceProvider",),
    "PractitionerRole:location": ("location",),
    "PractitionerRole:organization": ("organization",),
}

_INCLUDE = re.compile(r"[?&]_include=([A-Za-z]+:[a-z-]+)")


def includes_of(query: str) -> tuple[str, ...]:
    """The ``_include`` values of a query or template, in order (``Coverage:payor`` ...)."""
    return tuple(_INCLUDE.findall(query))


def honoured_includes(bundle: dict[str, Any]) -> frozenset[str]:
    """The ``_include`` values a searchset Bundle's ``self`` link says the server used (none without one)."""
    for link in bundle.get("link") or []:
        if isinstance(link, dict) and link.get("relation") == "self" and isinstance(link.get("url"), str):
            # The values of ``_include`` alone are decoded, and a name only when it holds an escape (a history
            # search's link may carry dozens of codes, and parse_qsl decoding them all costs more than the rest
            # of the answer's follow-up).
            parameters = (part.partition("=") for part in urlsplit(link["url"]).query.split("&"))
            return frozenset(unquote_plus(value) for name, _, value in parameters if _is_include(name))
    return frozenset()


def _is_include(name: str) -> bool:
    """Whether a query parameter's name, as written in a URL, is ``_include``."""
    if name == "_include":
        return True
    return ("%" in name or "+" in name) and unquote_plus(name) == "_include"


def _references(value: Any, path: tuple[str, ...]) -> list[str]:
    found: list[str] = []
    for item in value if isinstance(value, list) else [value]:
        if not isinstance(item, dict):
            continue
        if path:
            found.extend(_references(item.get(path[0]), path[1:]))
        elif isinstance(item.get("reference"), str):
            found.append(item["reference"])
    return found


def missing_included_references(query: str, resources: list[dict[str, Any]],
                                honoured: frozenset[str] = frozenset()) -> list[str]:
    """``Type/id`` of every resource ``query`` includes that ``resources`` (the answer) does not hold.

    Only relative literal references are returned: a contained or absolute one is not the server's to read.
    The ``honoured`` includes (``honoured_includes`` of the answer) are the server's last word: none of theirs.
    """
    held = {f"{r.get('resourceType')}/{r.get('id')}" for r in resources}
    wanted: list[str] = []
    for include in includes_of(query):
        source_type = include.split(":", 1)[0]
        path = INCLUDE_PATHS.get(include)
        if path is None or include in honoured:
            continue
        for resource in resources:
            if resource.get("resourceType") != source_type:
                continue
            for reference in _references(resource, path):
                parts = reference.split("/")
                if len(parts) == 2 and all(parts) and reference not in held and reference not in wanted:
                    wanted.append(reference)
    return wanted
