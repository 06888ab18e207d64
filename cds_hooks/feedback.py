"""Validating CDS Hooks 2.0 feedback: ``{"feedback": [...]}``, every item checked before any is stored."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

from needlecheck.cds_hooks.errors import ApiError

OUTCOMES = ("accepted", "overridden")


@dataclass(frozen=True)
class FeedbackItem:
    """One validated feedback item."""

    card: str
    outcome: str
    outcome_timestamp: str
    accepted_suggestions: tuple[str, ...]
    override_reason: str | None

    @property
    def identity(self) -> tuple[str, str, str]:
        """What makes a repeat of the same feedback the same: card, outcome and timestamp."""
        return self.card, self.outcome, self.outcome_timestamp


def _timestamp(value: Any, path: str) -> str:
    if not isinstance(value, str):
        raise ApiError(400, f"'{path}' is required and must be an ISO 8601 instant", expression=path)
    try:
        moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as error:
        raise ApiError(400, f"'{path}' is not an ISO 8601 instant: '{value}'", expression=path) from error
    if moment.tzinfo is None:
        raise ApiError(400, f"'{path}' must carry a time zone (UTC)", expression=path)
    return moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def _override_reason(value: Any, path: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ApiError(400, f"'{path}' must be an object", expression=path)
    reason, comment = value.get("reason"), value.get("userComment")
    if reason is None and comment is None:
        raise ApiError(400, f"'{path}' needs a 'reason' or a 'userComment'", expression=path)
    if reason is not None and not (isinstance(reason, dict) and isinstance(reason.get("code"), str)
                                   and isinstance(reason.get("system"), str)):
        raise ApiError(400, f"'{path}.reason' must be a Coding with system and code", expression=f"{path}.reason")
    if comment is not None and not isinstance(comment, str):
        raise ApiError(400, f"'{path}.userComment' must be a string", expression=f"{path}.userComment")
    return json.dumps(value, sort_keys=True)


def _item(value: Any, path: str) -> FeedbackItem:
    if not isinstance(value, dict):
        raise ApiError(400, f"'{path}' must be an object", expression=path)
    card = value.get("card")
    if not isinstance(card, str) or not card.strip():
        raise ApiError(400, f"'{path}.card' is required and must be the card's uuid", expression=f"{path}.card")
    outcome = value.get("outcome")
    if outcome not in OUTCOMES:
        raise ApiError(400, f"'{path}.outcome' must be 'accepted' or 'overridden'", expression=f"{path}.outcome")
    suggestions = value.get("acceptedSuggestions")
    accepted: list[str] = []
    if outcome == "accepted":
        if not isinstance(suggestions, list) or not suggestions:
            raise ApiError(400, f"'{path}.acceptedSuggestions' is required when the outcome is accepted",
                           expression=f"{path}.acceptedSuggestions")
        for index, suggestion in enumerate(suggestions):
            if not isinstance(suggestion, dict) or not isinstance(suggestion.get("id"), str):
                where = f"{path}.acceptedSuggestions[{index}].id"
                raise ApiError(400, f"'{where}' must be the suggestion's uuid", expression=where)
            accepted.append(suggestion["id"])
    reason = _override_reason(value.get("overrideReason"), f"{path}.overrideReason")
    if reason is not None and outcome != "overridden":
        raise ApiError(400, f"'{path}.overrideReason' is only allowed with outcome 'overridden'",
                       expression=f"{path}.overrideReason")
    timestamp = _timestamp(value.get("outcomeTimestamp"), f"{path}.outcomeTimestamp")
    return FeedbackItem(card, outcome, timestamp, tuple(accepted), reason)


def parse_feedback(body: Any) -> list[FeedbackItem]:
    """Validate a feedback request; raises ApiError(400) naming the first bad field."""
    if not isinstance(body, dict) or not isinstance(body.get("feedback"), list) or not body["feedback"]:
        raise ApiError(400, "the body must be an object with a non-empty 'feedback' array", expression="feedback")
    return [_item(item, f"feedback[{index}]") for index, item in enumerate(body["feedback"])]
