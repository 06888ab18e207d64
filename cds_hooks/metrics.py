"""Prometheus metrics at ``GET /metrics``: hook calls, cards, latency, prefetch, feedback and data sets.

Every label value comes from a fixed set the service defines (service ids, rule ids, card indicators, HTTP
statuses, prefetch keys and their outcomes, data-set names), never from what a client sent: no patient data,
identifier or free text can reach a label, and a client cannot grow the number of series.

Under gunicorn the workers are separate processes, so ``serve`` puts prometheus-client in multiprocess mode
(``prepare_multiprocess_dir``, before any worker forks): each process writes its values to files in a
directory of its own, and whichever worker answers ``/metrics`` adds them up. In one process (the Flask test
client, ``needlecheck check``) the default registry is used.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flask import Blueprint, Flask, Response

from needlecheck.cds_hooks.cards import RULE_EXTENSION
from needlecheck.cds_hooks.services import SERVICES
from needlecheck.mappings.datasets import dataset_specs, load_all_datasets
from needlecheck.plugin.rules import all_rules

if TYPE_CHECKING:
    from prometheus_client import Counter, Histogram
    from prometheus_client.core import Metric

    from needlecheck.cds_hooks.audit import InvocationTrace
    from needlecheck.cds_hooks.feedback import FeedbackItem

log = logging.getLogger("needlecheck")
metrics_routes = Blueprint("metrics", __name__)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
UNKNOWN = "unknown"
NO_RULE = "none"  # the "Not checked" card belongs to no rule
INDICATORS = frozenset({"info", "warning", "critical"})
# Latency buckets in seconds: a hook call is answered in milliseconds, the FHIR budget is 3 s by default.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0)


@dataclass(frozen=True)
class ServiceMetrics:
    """The service's metric families."""

    hook_calls: Counter
    cards: Counter
    hook_seconds: Histogram
    fhir_seconds: Histogram
    prefetch_keys: Counter
    feedback_items: Counter


@cache
def service_metrics() -> ServiceMetrics:
    """The metric families, created once per process in the default registry."""
    # Imported here, not at the top of the module: prometheus-client picks in-process or multiprocess values
    # when it is first imported, and ``serve`` sets PROMETHEUS_MULTIPROC_DIR before that may happen.
    from prometheus_client import Counter, Histogram

    return ServiceMetrics(
        hook_calls=Counter("needlecheck_hook_calls", "CDS service calls, by service and HTTP status",
                           ["service", "status"]),
        cards=Counter("needlecheck_cards", "Cards returned, by rule and indicator", ["rule", "indicator"]),
        hook_seconds=Histogram("needlecheck_hook_duration_seconds",
                               "Time from request to answer of a CDS service call", ["service"],
                               buckets=LATENCY_BUCKETS),
        fhir_seconds=Histogram("needlecheck_fhir_wait_seconds",
                               "Time a CDS service call waited for its FHIR server (overlapping queries once)",
                               ["service"], buckets=LATENCY_BUCKETS),
        prefetch_keys=Counter("needlecheck_prefetch_keys", "Prefetch keys of CDS service calls, by outcome",
                              ["service", "key", "outcome"]),
        feedback_items=Counter("needlecheck_feedback_items", "Feedback items received in accepted requests",
                               ["service", "outcome"]),
    )


@cache
def _rule_ids() -> frozenset[str]:
    return frozenset(rule.rule_id for rule in all_rules())


def service_label(service_id: Any) -> str:
    """``service_id`` if it names one of our services, else ``unknown`` (a 404 path is client text)."""
    return service_id if isinstance(service_id, str) and service_id in SERVICES else UNKNOWN


def card_labels(card: dict[str, Any]) -> tuple[str, str]:
    """The (rule, indicator) labels of one card, each from its fixed set."""
    rule = (card.get("extension") or {}).get(RULE_EXTENSION)
    rule_label = rule if isinstance(rule, str) and rule in _rule_ids() else (NO_RULE if rule is None else UNKNOWN)
    indicator = card.get("indicator")
    return rule_label, indicator if isinstance(indicator, str) and indicator in INDICATORS else UNKNOWN


@cache
def series(family: Any, *labels: str) -> Any:
    """``family.labels(*labels)``, looked up once a process: ``labels`` takes the family's lock and checks its
    arguments on every call, about 4 us each, and a hook call counts some ten series. It returns the same
    object every time, so caching it changes nothing else; the label values come from the fixed sets above,
    so the cache stays small."""
    return family.labels(*labels)


def observe_hook_call(service_id: Any, status: int, total_ms: float | None, trace: InvocationTrace | None) -> None:
    """Count one CDS service call (``service_id`` as the route matched it) and what it answered; reads the
    invocation trace the audit log keeps. Errors are logged, never raised: metrics must never cost a clinician an
    answer."""
    try:
        _observe(service_label(service_id), str(status), total_ms, trace)
    except Exception as error:
        log.error("metrics of a hook call not recorded: %s", type(error).__name__, exc_info=error)


def _observe(service: str, status: str, total_ms: float | None, trace: InvocationTrace | None) -> None:
    metrics = service_metrics()
    series(metrics.hook_calls, service, status).inc()
    if total_ms is not None:
        series(metrics.hook_seconds, service).observe(total_ms / 1000)
    if trace is None:
        return
    if trace.fhir_requests:
        series(metrics.fhir_seconds, service).observe(trace.fhir_waited_ms / 1000)
    result = trace.result
    if result is None:
        return
    for card in result.body.get("cards") or []:
        series(metrics.cards, *card_labels(card)).inc()
    for name, outcome in result.prefetch.items():
        series(metrics.prefetch_keys, service, name, str(outcome.status)).inc()


def count_feedback(service_id: str, items: Iterable[FeedbackItem]) -> None:
    """Count the items of a stored feedback request by outcome (``accepted`` or ``overridden``)."""
    counter = service_metrics().feedback_items
    for item in items:
        series(counter, service_label(service_id), item.outcome).inc()


def install_metrics(app: Flask) -> None:
    """Serve ``/metrics``; the app's after-request hook calls ``observe_hook_call`` for every CDS service call,
    with the duration the audit log records (``audit.time_requests`` starts the clock outside Flask)."""
    service_metrics()  # created now, so /metrics lists every family from the first scrape
    app.register_blueprint(metrics_routes)


class DataSetCollector:
    """``needlecheck_dataset_installed{dataset}``: 1 when the official files are installed, else 0.

    Read when scraped from the state the rules use, so it needs no multiprocess bookkeeping.
    """

    def collect(self) -> Iterator[Metric]:
        """The gauge family."""
        from prometheus_client.core import GaugeMetricFamily

        installed = load_all_datasets()
        family = GaugeMetricFamily("needlecheck_dataset_installed",
                                   "Whether an official data set is installed (1) or missing (0)", labels=["dataset"])
        for name in sorted(dataset_specs()):
            family.add_metric([name], 1.0 if installed[name] else 0.0)
        yield family


@cache
def _data_set_registry() -> Any:
    from prometheus_client import CollectorRegistry

    registry = CollectorRegistry(auto_describe=False)
    registry.register(DataSetCollector())
    return registry


@metrics_routes.get("/metrics")
def metrics() -> Response:
    """Prometheus text exposition of every process's metrics."""
    from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest, multiprocess

    if os.environ.get(MULTIPROC_ENV):
        registry = CollectorRegistry(auto_describe=False)
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = REGISTRY
    body = generate_latest(registry) + generate_latest(_data_set_registry())
    return Response(body, status=200, headers={"Content-Type": CONTENT_TYPE_LATEST})


def prepare_multiprocess_dir() -> Path | None:
    """Put prometheus-client in multiprocess mode for this process and the workers it will fork.

    Call it in the gunicorn master before anything imports prometheus-client. An operator's
    ``PROMETHEUS_MULTIPROC_DIR`` is used, emptied of a previous run's files (they would add a dead run's
    counts), and None is returned; otherwise a fresh private directory is made and returned, for the master
    to remove when it exits.
    """
    values = sys.modules.get("prometheus_client.values")
    if values is not None and not values.ValueClass._multiprocess:
        # Too late for this process (its values are chosen at import); workers that import it after the
        # fork would still be right, an app loaded here (preload) would not.
        log.warning("prometheus_client was imported before multiprocess mode was set up: metrics of an app "
                    "loaded in this process count for this process only")
    configured = os.environ.get(MULTIPROC_ENV)
    if configured:
        directory = Path(configured)
        directory.mkdir(parents=True, exist_ok=True)
        for stale in directory.glob("*.db"):
            stale.unlink()
        return None
    made = Path(tempfile.mkdtemp(prefix="needlecheck-metrics-"))  # 0700, owned by the server's user
    os.environ[MULTIPROC_ENV] = str(made)
    return made


def remove_multiprocess_dir(directory: Path | None) -> None:
    """Remove the directory ``prepare_multiprocess_dir`` made, if it made one."""
    if directory is not None:
        shutil.rmtree(directory, ignore_errors=True)


@contextmanager
def multiprocess_metrics() -> Iterator[None]:
    """Multiprocess mode for the block (the gunicorn master's run); the directory made for it goes after."""
    master = os.getpid()
    made = prepare_multiprocess_dir()
    try:
        yield
    finally:
        if os.getpid() == master:  # a worker leaves the master's call stack through here too, on its exit
            remove_multiprocess_dir(made)
            if made is not None:
                os.environ.pop(MULTIPROC_ENV, None)


def worker_exited(pid: int) -> None:
    """Tell prometheus-client that worker ``pid`` is gone (its live gauges no longer count)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(pid)
