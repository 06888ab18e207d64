"""Serving the app with gunicorn, the production WSGI server, configured from Settings."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask
from gunicorn.app.base import BaseApplication

from needlecheck.cds_hooks.app import create_app
from needlecheck.cds_hooks.health import log_missing_data_sets
from needlecheck.cds_hooks.logging_setup import configure_logging, gunicorn_logger_class
from needlecheck.cds_hooks.metrics import multiprocess_metrics, worker_exited
from needlecheck.cds_hooks.settings import Settings
from needlecheck.cds_hooks.store import describe_storage

log = logging.getLogger("needlecheck")


class NeedlecheckServer(BaseApplication):  # type: ignore[misc]
    """gunicorn with the options Settings gives, and a fresh app in each worker."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        super().__init__()

    def load_config(self) -> None:
        options: dict[str, Any] = {
            "bind": f"[{self.settings.host}]:{self.settings.port}" if ":" in self.settings.host
            else f"{self.settings.host}:{self.settings.port}",
            "workers": self.settings.workers,
            "worker_class": "gthread",
            "threads": 8,
            "timeout": 30,
            "graceful_timeout": 10,
            "accesslog": None,
            "loglevel": "info",
            # One service per machine should not need a control socket in the home directory.
            "control_socket_disable": True,
            "child_exit": _child_exit,
            "logger_class": gunicorn_logger_class(self.settings.log_format),
        }
        for key, value in options.items():
            self.cfg.set(key, value)

    def load(self) -> Flask:
        return create_app(self.settings)


def _child_exit(_arbiter: Any, worker: Any) -> None:
    """gunicorn's child_exit hook, in the master: the worker's metrics stop counting as live."""
    worker_exited(worker.pid)


def serve(settings: Settings) -> None:
    """Run until stopped. Without trusted clients the service accepts unauthenticated calls, which is only
    acceptable on loopback (elsewhere the command line demands ``--insecure``); the start-up log says which."""
    configure_logging(settings.log_format)
    if settings.trusted_clients:
        log.info("client authentication required: %d trusted CDS client(s) (%s), aud base %s",
                 len(settings.trusted_clients), ", ".join(c.iss for c in settings.trusted_clients),
                 settings.public_base_url)
    elif settings.bound_to_loopback:
        log.warning("no trusted CDS clients are configured: accepting unauthenticated calls, "
                    "acceptable only because the service is bound to loopback (%s)", settings.host)
    else:
        log.warning("no trusted CDS clients are configured: accepting unauthenticated calls on %s, which is "
                    "NOT loopback (--insecure); anyone who can reach it can call it", settings.host)
    if settings.allow_http:
        log.warning("allow_http is on: http:// FHIR servers and key URLs are accepted (for tests only)")
    log.info("feedback and the audit log are stored in %s", describe_storage(settings))
    log_missing_data_sets(settings.datasets_dir)
    with multiprocess_metrics():
        NeedlecheckServer(settings).run()
