"""CORS for browser-based CDS clients (CDS Hooks §Cross-Origin Resource Sharing): only the configured origins,
only the CDS Hooks routes, and preflight for the ``Authorization`` and ``Content-Type`` headers a call sends."""

from __future__ import annotations

from flask import Flask
from flask_cors import CORS

ALLOWED_HEADERS = ["Authorization", "Content-Type"]
PREFLIGHT_CACHE_SECONDS = 600


def allow_origins(app: Flask, origins: tuple[str, ...]) -> None:
    """Answer CORS requests from ``origins`` (exact origins, no wildcards); others get no CORS headers."""
    if not origins:
        return
    CORS(app, resources={r"/cds-services*": {"origins": list(origins)}}, allow_headers=ALLOWED_HEADERS,
         methods=["GET", "POST", "OPTIONS"], max_age=PREFLIGHT_CACHE_SECONDS, supports_credentials=False,
         vary_header=True)
