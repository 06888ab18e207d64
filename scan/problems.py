"""Input problems of a scan: what could not be used, where, and why, without stopping the scan."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

# Enough for a person to find the pattern; a broken export of a million lines must not fill summary.json.
MAX_LISTED = 1000


@dataclass(frozen=True)
class InputProblem:
    """One unusable piece of input: ``file`` and ``line`` (1-based) where it was read, when known."""

    kind: str
    file: str | None
    line: int | None
    message: str


@dataclass
class ProblemLog:
    """Every problem counted by kind; the first ``MAX_LISTED`` kept with their place."""

    counts: Counter[str] = field(default_factory=Counter)
    listed: list[InputProblem] = field(default_factory=list)

    def append(self, problem: InputProblem) -> None:
        """Count ``problem`` and keep it if the list has room."""
        self.counts[problem.kind] += 1
        if len(self.listed) < MAX_LISTED:
            self.listed.append(problem)

    @property
    def total(self) -> int:
        """How many problems were found."""
        return sum(self.counts.values())

    def as_json(self) -> dict[str, Any]:
        """The ``input_problems`` object of summary.json."""
        return {"total": self.total, "by_kind": dict(sorted(self.counts.items())),
                "listed": [asdict(problem) for problem in self.listed],
                "truncated": self.total > len(self.listed)}
