"""The Flask application factory: thin HTTP around ``run_hook``, the feedback store and the audit log."""

from __future__ import annotations

import contextlib
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import orjson
from flask import Blueprint, Flask, Response, current_app, g, request
from werkzeug.exceptions import HTTPException

from needlecheck.cds_hooks.audit import (
    call_facts,
    card_rule_ids,
    elapsed_ms,
    record_invocation,
    time_requests,
    trace_invocation,
)
from needlecheck.cds_hooks.client_auth import AuthenticatedClient, authenticated_client, install_client_auth
from needlecheck.cds_hooks.cors import allow_origins
from needlecheck.cds_hooks.errors import ApiError, operation_outcome, outcome_for
from needlecheck.cds_hooks.feedback import parse_feedback
from needlecheck.cds_hooks.fhir_pool import FHIR_THREADS
from needlecheck.cds_hooks.fhir_server_policy import check_fhir_server
from needlecheck.cds_hooks.governance import Governance
from needlecheck.cds_hooks.health import health_routes
from needlecheck.cds_hooks.invoke import run_hook
from needlecheck.cds_hooks.logging_setup import log_access
from needlecheck.cds_hooks.metrics import count_feedback, install_metrics, observe_hook_call
from needlecheck.cds_hooks.openapi import openapi_routes
from needlecheck.cds_hooks.request_limits import check_hook_request_size, parse_json_body
from needlecheck.cds_hooks.services import SERVICES, ServiceDefinition, discovery_document
from needlecheck.cds_hooks.settings import Settings
from needlecheck.cds_hooks.store import Store, StoreUnavailable, open_store
from needlecheck.cds_hooks.suppression import Suppression, load_or_create_secret
from needlecheck.mappings.loading import load_all
from needlecheck.mappings.local_policy import configure_policy_dir

log = logging.getLogger("needlecheck")
routes = Blueprint("cds_hooks", __name__)
HOOK_ENDPOINT = "cds_hooks.invoke"


def _json(body: dict[str, Any], status: int = 200) -> Response:
    content_type = "application/fhir+json" if body.get("resourceType") == "OperationOutcome" else "application/json"
    return Response(orjson.dumps(body), status=status, mimetype=content_type)


def _service(service_id: str) -> ServiceDefinition:
    service = SERVICES.get(service_id)
    if service is None:
        raise ApiError(404, f"no CDS service with id '{service_id}'", code="not-found")
    return service


def _body(settings: Settings | None = None) -> Any:
    settings = settings or current_app.config["NEEDLECHECK_SETTINGS"]
    return parse_json_body(request.get_data(cache=False), settings.request_limits)


def _governance(extensions: dict[str, Any], settings: Settings, caller: AuthenticatedClient | None) -> Governance:
    """The site's decisions for a call of ``caller``, made once per client and settings (they depend on nothing
    else; a test may swap the app's settings)."""
    iss = caller.client.iss if caller else None
    made: dict[str | None, tuple[Settings, Governance]] = extensions["needlecheck.governance"]
    entry = made.get(iss)
    if entry is None or entry[0] is not settings:
        entry = made[iss] = (settings, Governance(settings.rule_settings_for(iss),
                                                  extensions["needlecheck.suppression"]))
    return entry[1]


@routes.get("/cds-services")
def discovery() -> Response:
    """CDS Hooks discovery."""
    return _json(discovery_document())


@routes.post("/cds-services/<service_id>")
def invoke(service_id: str) -> Response:
    """Call one CDS service."""
    service = _service(service_id)
    settings: Settings = current_app.config["NEEDLECHECK_SETTINGS"]
    body = _body(settings)
    trace = trace_invocation(body)  # the audit record is written from it, whatever the outcome
    check_hook_request_size(body, settings.request_limits)
    caller = authenticated_client()
    check_fhir_server(body, caller.client.fhir_hosts if caller else None, settings.allow_http)
    extensions = current_app.extensions
    with trace.fhir_session or contextlib.nullcontext():
        result = run_hook(service, body, settings.fhir, extensions["needlecheck.pool"], trace.fhir_session,
                          options=settings.rule_options, governance=_governance(extensions, settings, caller))
    trace.result = result  # the access line names the service, the rules that fired and the cards
    return _json(result.body)


@routes.post("/cds-services/<service_id>/feedback")
def feedback(service_id: str) -> Response:
    """Store feedback on cards of one service; a repeat of stored feedback is accepted and not stored twice."""
    service = _service(service_id)
    items = parse_feedback(_body())
    store: Store = current_app.extensions["needlecheck.store"]
    stored = store.save_feedback(service.service_id, items)
    count_feedback(service.service_id, items)
    return _json({"received": len(items), "stored": stored})


@routes.get("/healthz")
def health() -> Response:
    """Liveness: the process answers and its database can be read."""
    store: Store = current_app.extensions["needlecheck.store"]
    store.check()
    return _json({"status": "ok"})


def _observe_request(response: Response) -> Response:
    """After every request: the access line, and for a CDS service call its audit record and metrics.

    One hook reading the request's facts once, rather than one hook each: Flask's call of a hook and every
    lookup through its context-local proxies (``request``, ``g``) cost a busy worker on every call, and the
    access line and the audit record both name the rules whose cards the call shows.
    """
    environ = request.environ
    total_ms = elapsed_ms(environ)
    method = request.method
    rule = request.url_rule
    trace = g.get("needlecheck_invocation")
    result = trace.result if trace is not None else None
    rule_ids = card_rule_ids(result.body) if result is not None else ()
    service_id = (request.view_args or {}).get("service_id")
    if method == "POST" and rule is not None and rule.endpoint == HOOK_ENDPOINT:
        record_invocation(current_app.extensions["needlecheck.store"],
                          call_facts(response, service_id, total_ms, authenticated_client(), trace, rule_ids))
        observe_hook_call(service_id, response.status_code, total_ms, trace)
    if result is None:
        log_access(method, rule, response.status_code, total_ms)
    else:
        log_access(method, rule, response.status_code, total_ms, service_id, rule_ids, len(result.body["cards"]))
    return response


def create_app(settings: Settings | None = None) -> Flask:
    """Build the service with ``settings`` (embedded defaults when None)."""
    settings = settings or Settings()
    app = Flask("needlecheck")
    app.config["NEEDLECHECK_SETTINGS"] = settings
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    # Every table, source file and installed data set is validated now, a site's own policy rows with the
    # shipped ones: a malformed file stops start-up, naming the row (``needlecheck serve`` builds the app in
    # the gunicorn master, before it listens).
    configure_policy_dir(settings.policy_dir)
    load_all(settings.datasets_dir)
    app.extensions["needlecheck.store"] = open_store(settings)
    if settings.database_url and settings.suppress_overridden_days and not settings.suppression_secret:
        log.warning("repeat suppression uses a secret generated in %s: other instances must be given the same "
                    "suppression_secret (or NEEDLECHECK_SUPPRESSION_SECRET) to share it", settings.data_dir)
    app.extensions["needlecheck.suppression"] = Suppression(
        app.extensions["needlecheck.store"], load_or_create_secret(settings.suppression_secret, settings.data_dir),
        settings.suppress_overridden_days)
    app.extensions["needlecheck.governance"] = {}  # by client iss (None: open mode): see _governance
    app.extensions["needlecheck.pool"] = ThreadPoolExecutor(max_workers=FHIR_THREADS, thread_name_prefix="fhir")
    app.register_blueprint(routes)
    app.register_blueprint(openapi_routes)
    app.register_blueprint(health_routes)
    install_client_auth(app, settings)
    allow_origins(app, settings.cors_origins)
    time_requests(app)
    install_metrics(app)
    app.after_request(_observe_request)

    @app.errorhandler(ApiError)
    def api_error(error: ApiError) -> Response:
        return _json(outcome_for(error), error.status)

    @app.errorhandler(StoreUnavailable)
    def store_unavailable(error: StoreUnavailable) -> Response:
        # Nothing was stored (the transaction did not commit): the client may retry the same request.
        log.warning("database unavailable: %s", error)
        return _json(operation_outcome("the database is unavailable; retry later", "transient"), 503)

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> Response:
        code = {404: "not-found", 405: "not-supported", 413: "too-long"}.get(error.code or 400, "invalid")
        return _json(operation_outcome(error.description or error.name, code), error.code or 400)

    @app.errorhandler(Exception)
    def unexpected(error: Exception) -> Response:
        # The type only: exception messages may quote request content (PHI).
        log.error("unexpected error %s", type(error).__name__, exc_info=error)
        return _json(operation_outcome("internal error", "exception"), 500)

    return app
