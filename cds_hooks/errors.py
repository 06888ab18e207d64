"""Errors a client can cause, and the OperationOutcome bodies they are answered with."""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """An error answered with ``status`` and an OperationOutcome naming the problem."""

    def __init__(self, status: int, message: str, code: str = "invalid", expression: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.expression = expression


def operation_outcome(message: str, code: str = "invalid", expression: str | None = None,
                      severity: str = "error") -> dict[str, Any]:
    """A FHIR R4 OperationOutcome with one issue."""
    issue: dict[str, Any] = {"severity": severity, "code": code, "diagnostics": message}
    if expression:
        issue["expression"] = [expression]
    return {"resourceType": "OperationOutcome", "issue": [issue]}


def outcome_for(error: ApiError) -> dict[str, Any]:
    """The OperationOutcome body of an ApiError."""
    return operation_outcome(error.message, error.code, error.expression)
