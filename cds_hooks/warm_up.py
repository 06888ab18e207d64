"""A worker's first hook calls, answered in-process around the moment it starts accepting traffic.

The first call in a fresh process pays for what only happens once: lazy imports, the rules' first look-ups in
their tables, the card templates, and the ``fhir.resources`` models that check a suggestion's resource (the
models alone cost ~0.7 s of CPU). The warm-up pays it with a built-in ``order-sign`` request
(``warm_up_request.json``: a synthetic patient's draft 20561 order for two muscles, with full prefetch and no
``fhirServer``, so it makes no network call), in two variants:

- the *engine* call: the same draft billed as 20560, which fires no card. The gunicorn master answers it before
  it forks (``warm_up_before_fork``: what it loads, every worker shares) and each worker answers it again before
  it accepts traffic (``warm_up``, gunicorn's ``post_worker_init``).
- the *suggestion* call: the request as shipped, which fires DN-CODE-001 with a one-click change to 20560, so
  the models that validate the changed draft are imported. Each worker answers it in a background thread once
  it accepts traffic: a start (and so a restart, or a worker replaced after a crash) no longer waits ~1 s for
  the models before it listens, and a clinician's first suggestion still finds them loaded unless it comes in
  the worker's first second, when it waits for the import under way. The price is memory: each worker holds
  its own copy of the models (~20 MB) instead of sharing the master's pages.

Both go straight to ``run_hook``, not through Flask: no audit record, no ``card_issued`` row, no metric and no
access-log line is written for them, and repeat suppression (which reads the database) is left out.
"""

from __future__ import annotations

import json
import logging
import threading
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
_ENGINE_CODE = ("20560", "Needle insertion(s) without injection(s); 1 or 2 muscle(s)", "Dry needling, 1 or 2 muscles")


def warm_up_request(suggestion: bool = True) -> dict[str, Any]:
    """The built-in request body (a fresh dict each time): as shipped (fires a card with a suggestion), or with
    the draft billed as 20560, right for its two muscles (``suggestion=False``: no card)."""
    text = resources.files("needlecheck.cds_hooks").joinpath("warm_up_request.json").read_text(encoding="utf-8")
    body: dict[str, Any] = json.loads(text)
    if not suggestion:
        code = body["context"]["draftOrders"]["entry"][0]["resource"]["code"]
        code["coding"][0]["code"], code["coding"][0]["display"], code["text"] = _ENGINE_CODE
    return body


def warm_up_call(app: Flask, pool: ThreadPoolExecutor | None = None, suggestion: bool = True) -> HookResult:
    """Answer the built-in request (``warm_up_request(suggestion)``) with ``app``'s settings and FHIR pool (or
    ``pool``); raises what ``run_hook`` raises."""
    settings: Settings = app.config["NEEDLECHECK_SETTINGS"]
    result = run_hook(SERVICES[WARM_UP_SERVICE], warm_up_request(suggestion), settings.fhir,
                      pool or app.extensions["needlecheck.pool"], options=settings.rule_options,
                      governance=Governance(settings.rule_settings_for(None)))
    json.dumps(result.body, separators=(",", ":"), ensure_ascii=False)  # as the response is written
    return result


def _logged_call(app: Flask, suggestion: bool, done: str) -> None:
    started = time.perf_counter()
    try:
        if suggestion:
            load_suggestion_models()
        result = warm_up_call(app, suggestion=suggestion)
    except Exception as error:
        log.warning("warm-up call failed (%s); the worker starts cold", type(error).__name__)
        return
    log.info("%s: %d card(s) in %.0f ms", done, len(result.body["cards"]), (time.perf_counter() - started) * 1000)


def warm_up(app: Flask) -> threading.Thread:
    """In a worker before it accepts traffic: the engine call, logged; then the suggestion call in a daemon
    thread, which is returned (it runs while the worker serves). A failure is logged (its type only) and never
    stops the worker."""
    _logged_call(app, False, "worker warmed up")
    thread = threading.Thread(target=_logged_call, args=(app, True, "suggestion models loaded"),
                              name="needlecheck-warm-up", daemon=True)
    thread.start()
    return thread


def warm_up_before_fork(app: Flask) -> None:
    """The engine call once in the gunicorn master, with a pool of its own that it shuts down (no thread may cross
    the fork): the tables, the rules' look-ups and the engine's lazy imports it loads, every worker shares."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        warm_up_call(app, pool, suggestion=False)
