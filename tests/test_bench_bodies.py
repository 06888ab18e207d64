"""The benchmark's request bodies answer what ``bench/README.md`` says they answer.

The clean bodies (order-sign and claim-create with full prefetch) must get ``{"cards": []}``: a benchmark of
a clean request that quietly starts firing cards measures card rendering instead, as it did before issue 10.
The firing body (20560 billed for three muscles) must get exactly its DN-CODE-001 card. Both in-process, as
``bench.run`` calls ``run_hook``, and through the console script ``needlecheck check FILE``, whose wall time the
benchmark reports.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from bench.requests import BODIES, SCENARIOS, TODAY, BenchBody
from bench.run import CHECK_BODY
from needlecheck.cds_hooks.fhir_client import FhirLimits
from needlecheck.cds_hooks.invoke import run_hook
from needlecheck.cds_hooks.services import SERVICES

RULE_EXTENSION = "org.needlecheck.rule-id"
CLEAN = [name for name, body in BODIES.items() if not body.fires]
FIRING = [name for name, body in BODIES.items() if body.fires]


@pytest.fixture(scope="module")
def pool() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(max_workers=4, thread_name_prefix="fhir") as executor:
        yield executor


def _rule_ids(response: dict[str, object]) -> list[str]:
    cards = response["cards"]
    assert isinstance(cards, list)
    return sorted(card["extension"][RULE_EXTENSION] for card in cards)


def test_the_bodies_cover_both_services_clean_and_one_firing() -> None:
    assert {BODIES[name].service_id for name in CLEAN} == set(SERVICES)
    assert FIRING
    assert {build.__name__ for build in SCENARIOS.values()} == {BODIES[name].build.__name__ for name in CLEAN}


@pytest.mark.parametrize("name", CLEAN)
def test_a_clean_body_answers_no_card_in_process(name: str, pool: ThreadPoolExecutor) -> None:
    body = BODIES[name]
    result = run_hook(SERVICES[body.service_id], body.build(), FhirLimits(), pool, today=TODAY)
    assert result.body == {"cards": []}


@pytest.mark.parametrize("name", FIRING)
def test_the_firing_body_answers_its_rule_in_process(name: str, pool: ThreadPoolExecutor) -> None:
    body: BenchBody = BODIES[name]
    result = run_hook(SERVICES[body.service_id], body.build(), FhirLimits(), pool, today=TODAY)
    assert _rule_ids(result.body) == sorted(body.fires)


def test_needlecheck_check_answers_no_card_for_the_timed_body(tmp_path: Path) -> None:
    """``needlecheck check FILE``, whose wall time bench.run reports for the order-sign body, answers it with no
    card too (it evaluates on the real date, not ``TODAY``)."""
    request = tmp_path / "request.json"
    request.write_text(json.dumps(BODIES[CHECK_BODY].build()), encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "needlecheck", "check", str(request)], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"cards": []}
