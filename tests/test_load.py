"""A small run of the load test (``bench/mixed_load.py``) against ``needlecheck serve`` with 2 workers:
no 5xx, every request answered with the status that is right for it, no accepted feedback lost or doubled.
No timing is asserted here; the figures of the full run are in the README."""

from __future__ import annotations

from pathlib import Path

from bench.mixed_load import run_mixed_load


def test_a_thousand_mixed_requests_lose_nothing(tmp_path: Path) -> None:
    result = run_mixed_load(total=1_000, concurrency=16, workers=2, data_dir=tmp_path)

    kinds = result.statuses()
    assert {"order-sign", "claim-create", "feedback", "feedback (resend)", "invalid"} <= set(kinds)
    assert result.server_errors == 0
    assert [outcome.problem for outcome in result.unanswered] == []
    assert [(o.call.kind, o.call.path, o.status) for o in result.unexpected] == []
    assert kinds["invalid"][200] == 0
    assert len(result.accepted_cards) > 100
    assert result.stored_rows == len(result.accepted_cards), "accepted feedback lost, or stored twice"
    # A request and its resends (which may overtake it) together store each of their items exactly once.
    stored_per_request: dict[tuple[str, ...], int] = {}
    for outcome in result.outcomes:
        if outcome.call.cards:
            stored_per_request[outcome.call.cards] = stored_per_request.get(outcome.call.cards, 0) + outcome.stored
    assert any(o.call.kind == "feedback (resend)" for o in result.outcomes)
    assert all(stored == len(cards) for cards, stored in stored_per_request.items())
