"""Bounds on what one request may make the service parse: JSON nesting depth, Bundle entries, claim lines.

The body size is bounded before this (``MAX_CONTENT_LENGTH``, 413). Within that size a hostile body can
still nest deeply (every recursive walk of it, ours or a library's, then costs stack) or hold a hundred
thousand tiny Bundle entries (each one validated as a FHIR resource). Both are refused here, before any
FHIR model sees the request, with an OperationOutcome that names the setting.

The depth is measured on the bytes, not by walking the parsed value, so the check costs a few C-speed
passes over the body rather than a Python call per JSON node on every request.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import orjson

from needlecheck.cds_hooks.errors import ApiError

# A JSON string, escapes included. Only applied to a body json.loads accepted, so every string is
# terminated and the scan is linear.
_JSON_STRING = re.compile(rb'"(?:[^"\\]++|\\.)*+"')
_OPENERS_AND_CLOSERS = bytes.maketrans(b"[{]}", b"(())")
_NOT_BRACKETS = bytes(byte for byte in range(256) if byte not in b"[]{}")
_NOT_BRACKETS_OR_QUOTES = bytes(byte for byte in range(256) if byte not in b'[]{}"')


@dataclass(frozen=True)
class RequestLimits:
    """How much structure one request may carry."""

    max_json_depth: int = 64
    max_bundle_entries: int = 1000
    max_claim_items: int = 50


def nesting_depth_exceeds(document: bytes, limit: int) -> bool:
    """Whether valid JSON ``document`` nests arrays/objects more than ``limit`` levels deep."""
    brackets = _brackets_outside_strings(document)
    # Valid JSON brackets are balanced, and each pass removes exactly the innermost level: bytes.replace
    # does not rescan what it produced, so "(())" becomes "()", not "". Balanced brackets of length 2n nest at
    # most n deep, so the passes stop once what is left is too short to nest past the levels still allowed
    # (a typical request: after three or four passes, not after as many as it nests deep).
    for done in range(limit):
        if len(brackets) <= 2 * (limit - done):
            return False
        brackets = brackets.replace(b"()", b"")
    return bool(brackets)


def _brackets_outside_strings(document: bytes) -> bytes:
    """The brackets of valid JSON ``document`` that are not inside strings, ``{[`` as ``(`` and ``]}`` as ``)``."""
    if b"\\" in document:
        return _JSON_STRING.sub(b"", document).translate(_OPENERS_AND_CLOSERS, _NOT_BRACKETS)
    # Without escapes every quote opens or closes a string, so a bracket is inside one when an odd number of
    # quotes precede it. Keep only quotes and brackets (one C pass) and drop adjacent pairs of quotes: that
    # leaves every parity as it was, and takes away each string without a bracket whole. Only when a string
    # held a bracket do quotes remain, for the split (slower: one object per string) to separate.
    skeleton = document.translate(None, _NOT_BRACKETS_OR_QUOTES)
    # Usually no string holds a bracket: every string is then a pair of adjacent quotes, and the quotes pair up
    # left to right exactly when ``""`` occurs half as often as ``"``. Counting costs a fraction of the
    # replace below (which copies around each of the thousand or so pairs of a typical request).
    if skeleton.count(b'""') * 2 == skeleton.count(b'"'):
        return skeleton.translate(_OPENERS_AND_CLOSERS, b'"')
    skeleton = skeleton.replace(b'""', b"")
    if b'"' in skeleton:
        skeleton = b"".join(skeleton.split(b'"')[::2])
    return skeleton.translate(_OPENERS_AND_CLOSERS)


def parse_json_body(document: bytes, limits: RequestLimits) -> Any:
    """The parsed body; ApiError(400) when it is not JSON or nests deeper than ``max_json_depth``."""
    too_deep = ApiError(400, f"the request body nests JSON more than {limits.max_json_depth} levels deep "
                             f"(setting max_json_depth)", code="too-long")
    try:
        body = orjson.loads(document or b"")
    except ValueError as error:
        # orjson refuses what RFC 8259 refuses (NaN, invalid UTF-8), and nesting past 1024 levels.
        if str(error).startswith("depth limit exceeded"):
            raise too_deep from error
        raise ApiError(400, "the request body is not valid JSON", code="structure") from error
    if nesting_depth_exceeds(document, limits.max_json_depth):
        raise too_deep
    return body


def _count_limit(value: Any, path: str, limit: int, setting: str) -> None:
    if isinstance(value, list) and len(value) > limit:
        raise ApiError(413, f"'{path}' has {len(value)} elements; at most {limit} are accepted (setting {setting})",
                       code="too-long", expression=path)


def check_hook_request_size(body: Any, limits: RequestLimits) -> None:
    """ApiError(413) naming the setting when a Bundle in the request has more than ``max_bundle_entries``
    entries or the claim more than ``max_claim_items`` lines. Shapes are left to the request parser."""
    if not isinstance(body, dict):
        return
    context = body.get("context")
    if isinstance(context, dict):
        orders = context.get("draftOrders")
        if isinstance(orders, dict):
            _count_limit(orders.get("entry"), "context.draftOrders.entry", limits.max_bundle_entries,
                         "max_bundle_entries")
        claim = context.get("claim")
        if isinstance(claim, dict):
            _count_limit(claim.get("item"), "context.claim.item", limits.max_claim_items, "max_claim_items")
    prefetch = body.get("prefetch")
    if isinstance(prefetch, dict):
        for key, value in prefetch.items():
            entries = value.get("entry") if isinstance(value, dict) else None
            if isinstance(entries, list) and len(entries) > limits.max_bundle_entries:  # the path only then
                _count_limit(entries, f"prefetch.{key}.entry", limits.max_bundle_entries, "max_bundle_entries")
