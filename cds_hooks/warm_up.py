"""A worker's first hook call, answered in-process before it accepts traffic (gunicorn's ``post_worker_init``).

The first call in a fresh process pays for what only happens once: lazy imports and model classes of
``fhir.resources``, the rules' first look-ups in their tables, the card templates. The warm-up pays it with a
built-in ``order-sign`` request (``warm_up_request.json``: a synthetic patient's draft 20561 order for two
muscles, with full prefetch and no ``fhirServer``, so it makes no network call). It goes straight to
``run_hook``, not through Flask: no audit record, no ``card_issued`` row, no metric and no access-log line is
written for it, and repeat suppression (which reads the database) is left out.
"""

from __future__ import annotations

import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from importlib import resources
from typing import Any

from flask import Flask

from needlecheck.cds_hooks.cards import load_suggestion_models
from needlecheck.cds_hooks.governance import Governance
from needlecheck.cds_hooks.invoke import HookResult, run_hook
from needlecheck.cds_hooks.services import SERVICES
from needlecheck.cds_hooks.settings import Settings

log = logging.getLogger("needlecheck")

WARM_UP_SERVICE = "dry-needling-order-sign"


def warm_up_request() -> dict[str, Any]:
    """The built-in request body (a fresh dict each time)."""
    text = resources.files("needlecheck.cds_hooks").joinpath("warm_up_request.json").read_text(encoding="utf-8")
    body: dict[str, Any] = json.loads(text)
    return body


def warm_up_call(app: Flask, pool: ThreadPoolExecutor | None = None) -> HookResult:
    """Answer the built-in request with ``app``'s settings and FHIR pool (or ``pool``); raises what ``run_hook``
    raises."""
    settings: Settings = app.config["NEEDLECHECK_SETTINGS"]
    result = run_hook(SERVICES[WARM_UP_SERVICE], warm_up_request(), settings.fhir,
                      pool or app.extensions["needlecheck.pool"], options=settings.rule_options,
                      governance=Governance(settings.rule_settings_for(None)))
    json.dumps(result.body, separators=(",", ":"), ensure_ascii=False)  # as the response is written
    return result


def warm_up(app: Flask) -> None:
    """``warm_up_call``, logged; a failure is logged (its type only) and never stops the worker."""
    started = time.perf_counter()
    try:
        result = warm_up_call(app)
    except Exception as error:
        log.warning("warm-up call failed (%s); the worker starts cold", type(error).__name__)
        return
    log.info("worker warmed up: %d card(s) in %.0f ms", len(result.body["cards"]),
             (time.perf_counter() - started) * 1000)


def warm_up_before_fork(app: Flask) -> None:
    """The built-in call once in the gunicorn master, with a pool of its own that it shuts down (no thread may
    cross the fork), and the models that check suggestions imported: what it loads, every worker shares."""
    load_suggestion_models()
    with ThreadPoolExecutor(max_workers=1) as pool:
        warm_up_call(app, pool)
