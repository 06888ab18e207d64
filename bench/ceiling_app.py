"""The framework ceiling: a trivial Flask endpoint served exactly as ``needlecheck serve`` serves the service.

``CeilingServer`` subclasses ``cds_hooks.server.NeedlecheckServer`` and hands it the trivial app, so the
gunicorn options (bind, workers, worker class gthread, threads, preloading, timeouts, logging) come from the
same ``load_config`` and the same ``Settings`` (defaults, ``--config`` file) as the real service; only the
``child_exit`` hook, which marks a worker's Prometheus metrics dead, is left out. The one
route parses the JSON body and answers ``{"cards": []}`` the way the service writes its responses.

Run: ``python -m bench.ceiling_app --host 127.0.0.1 --port 8099 [--config FILE]`` from the repository root.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from flask import Flask, Response, request

from needlecheck.cds_hooks.server import NeedlecheckServer
from needlecheck.cds_hooks.settings import Settings, load_settings


def _json(body: dict[str, Any], status: int = 200) -> Response:
    return Response(json.dumps(body, separators=(",", ":"), ensure_ascii=False), status=status,
                    mimetype="application/json")


def create_ceiling_app(settings: Settings | None = None) -> Flask:
    """A Flask app with ``POST /cds-services/<id>`` (parse JSON, answer no cards) and ``GET /healthz``."""
    settings = settings or Settings()
    app = Flask("needlecheck-ceiling")
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes

    @app.post("/cds-services/<service_id>")
    def invoke(service_id: str) -> Response:
        body = json.loads(request.get_data(cache=False) or b"")
        if not isinstance(body, dict):
            return _json({"error": "not an object"}, 400)
        return _json({"cards": []})

    @app.get("/healthz")
    def health() -> Response:
        return _json({"status": "ok"})

    return app


class CeilingServer(NeedlecheckServer):
    """``NeedlecheckServer`` with the trivial app: same gunicorn options, different WSGI callable."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings, create_ceiling_app(settings))

    def load_config(self) -> None:
        """The service's options, less its ``child_exit`` hook (the ceiling keeps no Prometheus metrics)."""
        super().load_config()
        self.cfg.set("child_exit", _no_metrics)


def _no_metrics(_arbiter: Any, _worker: Any) -> None:
    """gunicorn's child_exit hook: nothing to mark dead."""


def main(argv: list[str] | None = None) -> int:
    """Serve the ceiling app until stopped (SIGTERM/SIGINT)."""
    parser = argparse.ArgumentParser(prog="python -m bench.ceiling_app", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--config", type=Path, help="the TOML file given to needlecheck serve, if any")
    args = parser.parse_args(argv)
    settings = load_settings(args.config, host=args.host, port=args.port)
    if not settings.bound_to_loopback:
        parser.error("the ceiling app only listens on loopback")
    CeilingServer(settings).run()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
