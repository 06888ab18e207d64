"""Serving the app with gunicorn, the production WSGI server, configured from Settings."""

from __future__ import annotations

import errno
import gc
import logging
import socket
import sqlite3
from typing import Any

import yaml
from flask import Flask
from gunicorn.app.base import BaseApplication

from needlecheck.cds_hooks.app import create_app
from needlecheck.cds_hooks.audit_writer import close_audit_writer, queue_audit_writes
from needlecheck.cds_hooks.health import log_missing_data_sets
from needlecheck.cds_hooks.logging_setup import (
    configure_logging,
    gunicorn_logger_class,
    stop_background_logs,
    write_logs_in_background,
)
from needlecheck.cds_hooks.metrics import multiprocess_metrics, worker_exited
from needlecheck.cds_hooks.openapi import openapi_json_text
from needlecheck.cds_hooks.settings import Settings
from needlecheck.cds_hooks.store import StoreUnavailable, describe_storage, open_store
from needlecheck.cds_hooks.warm_up import warm_up, warm_up_before_fork

log = logging.getLogger("needlecheck")

GC_YOUNG_THRESHOLD = 50_000  # net allocations between young collections in the workers (CPython's default: 700)


class StartupError(Exception):
    """Why the service cannot start, in one line an operator can act on (the command exits 2, no traceback)."""


class NeedlecheckServer(BaseApplication):  # type: ignore[misc]
    """gunicorn with the options Settings gives, serving an app built once in the master (``preload_app``).

    The forked workers share the app and its loaded tables. Nothing built in the master holds a database
    connection, a socket or a thread: stores connect on first use in each worker (see ``SqliteStore``,
    ``ProcessPool``), the FHIR thread pool starts its threads and the FHIR connection pool opens
    (``fhir_pool``) on a worker's first hook call that needs them, and the audit writer thread on its first
    record (``audit_writer``), and the log writer thread after the warm-up (``logging_setup``). Each worker
    answers one built-in call before it accepts traffic (``warm_up``) and writes its queued audit records and
    log lines before it exits.
    """

    def __init__(self, settings: Settings, application: Flask) -> None:
        self.settings = settings
        self.application = application
        super().__init__()

    def load_config(self) -> None:
        options: dict[str, Any] = {
            "bind": f"[{self.settings.host}]:{self.settings.port}" if ":" in self.settings.host
            else f"{self.settings.host}:{self.settings.port}",
            "workers": self.settings.workers,
            "worker_class": "gthread",
            "threads": self.settings.threads,
            "timeout": 30,
            "graceful_timeout": 10,
            "accesslog": None,
            "loglevel": "info",
            "preload_app": True,
            # Each worker listens on a socket of its own (SO_REUSEPORT) and the kernel spreads new connections
            # evenly over them. On the one shared socket, whichever worker's accept won the race took the
            # connection: a burst of 16 keep-alive connections was typically split 4/12, and each client of
            # the busier worker got a third of the answers of the other's (the p99). Where the option is missing (not
            # Linux or BSD), gunicorn's shared socket remains.
            "reuse_port": hasattr(socket, "SO_REUSEPORT"),
            # One service per machine should not need a control socket in the home directory.
            "control_socket_disable": True,
            "child_exit": _child_exit,
            "post_worker_init": _post_worker_init,
            "worker_exit": _worker_exit,
            "logger_class": gunicorn_logger_class(self.settings.log_format),
        }
        for key, value in options.items():
            self.cfg.set(key, value)

    def load(self) -> Flask:
        return self.application


def check_port(host: str, port: int) -> None:
    """Raise StartupError unless ``host:port`` can be bound now: gunicorn itself would retry a taken port five
    times over five seconds and then exit with a log, where the operator needs one line at once."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        # As gunicorn binds: a port whose old connections linger in TIME_WAIT is free.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except PermissionError as error:
            raise StartupError(f"cannot listen on {host}:{port}: port {port} is privileged (below 1024); use a "
                               "port above 1023 behind a reverse proxy, or grant CAP_NET_BIND_SERVICE") from error
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                raise StartupError(f"cannot listen on {host}:{port}: the port is already in use") from error
            raise StartupError(f"cannot listen on {host}:{port}: {error.strerror or error}") from error


def build_app(settings: Settings) -> Flask:
    """Everything that can stop the service, done before it listens, quickest checks first: the port is free;
    the data directory and database can be opened and their schema is created, once, before any worker starts;
    every table, source file and installed data set loads (MappingError names the file, row and field)."""
    check_port(settings.host, settings.port)
    try:
        open_store(settings).close()
        openapi_json_text()  # served from memory, so parsed now: a damaged installation stops here
        application = create_app(settings)
        queue_audit_writes(application, settings.audit_queue)
        warm_up_before_fork(application)
        return application
    except StoreUnavailable as error:
        raise StartupError(str(error)) from error
    except (OSError, yaml.YAMLError) as error:
        # openapi.yaml, or the replay cache's SQLite file in the data directory.
        raise StartupError(f"cannot start: {error}") from error
    except sqlite3.Error as error:
        raise StartupError(f"cannot open SQLite in {settings.data_dir}: {error}") from error


def _child_exit(_arbiter: Any, worker: Any) -> None:
    """gunicorn's child_exit hook, in the master: the worker's metrics stop counting as live."""
    worker_exited(worker.pid)


def _post_worker_init(worker: Any) -> None:
    """gunicorn's post_worker_init hook, in a worker before it accepts connections: the warm-up call, and its
    log lines written by a thread of its own from then on."""
    if isinstance(worker.wsgi, Flask) and "needlecheck.pool" in worker.wsgi.extensions:
        warm_up(worker.wsgi)
    write_logs_in_background()


def _worker_exit(_arbiter: Any, worker: Any) -> None:
    """gunicorn's worker_exit hook, in a worker that stops: its queued audit records are written first, then its
    queued log lines."""
    try:
        close_audit_writer(getattr(worker, "wsgi", None))
    finally:
        stop_background_logs()


def serve(settings: Settings) -> None:
    """Run until stopped. Without trusted clients the service accepts unauthenticated calls, which is only
    acceptable on loopback (elsewhere the command line demands ``--insecure``); the start-up log says which.
    Raises StartupError (and MappingError) before listening when it cannot start."""
    configure_logging(settings.log_format)
    # prometheus-client fixes its mode when first imported: the app is built inside the multiprocess setup.
    with multiprocess_metrics():
        application = build_app(settings)
        settle_collector()
        _log_start(settings)
        NeedlecheckServer(settings, application).run()


def settle_collector() -> None:
    """Set the garbage collector as the workers run: what is loaded so far frozen, young collections rare.

    ``serve`` calls it in the master before the fork; the benchmark calls it before it times ``run_hook``, so
    the in-process figure is what a worker pays.
    """
    # What the master built (tables, models, the app) lives as long as the process: frozen, a worker's
    # full garbage collection no longer walks it (about 0.2 s holding the GIL, a few times a minute under
    # load: the p99) nor writes to the pages the workers share with the master. A hook call allocates
    # thousands of containers, nearly all freed when it ends: with the default 700 a young collection ran
    # about once a call, walking the call's live objects (0.38 ms a call in process). The count that triggers
    # one is allocations less deallocations, so a collection in the middle of calls also moves their live
    # objects on and their deallocation no longer counts: at 10,000 one still ran every ~45 calls, ~0.26 ms
    # a call with the gen-1 collections it brings. A call leaves well under 30 containers behind (caches; a
    # queued audit record holds identifiers and figures only, see ``audit.call_facts``), so at 50,000 it is
    # about one collection per 3,000 calls, each walking at most 50,000 objects (~25 ms): ~0.01 ms a call.
    # Cyclic garbage waits that much longer (a few MB at most).
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])


def _log_start(settings: Settings) -> None:
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
    # gunicorn's own "Listening at:" line names no address when each worker opens its own socket (reuse_port).
    host = f"[{settings.host}]" if ":" in settings.host else settings.host
    log.info("listening on http://%s:%d, each of the %d workers on a socket of its own", host, settings.port,
             settings.workers)
    log.info("feedback and the audit log are stored in %s", describe_storage(settings))
    log_missing_data_sets(settings.datasets_dir)
