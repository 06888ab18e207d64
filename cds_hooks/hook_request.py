"""Reading a CDS Hooks service request: the envelope, the context, and the FHIR resources in it.

Strict about what the decision needs, liberal about the rest: unknown fields and context elements are
ignored (CDS Hooks extensions, CRD hook-23), missing required ones are a 400 that names the field.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from needlecheck.cds_hooks.errors import ApiError
from needlecheck.cds_hooks.services import ServiceDefinition
from needlecheck.plugin.fhir_input import read_claim_sequences
from needlecheck.plugin.fhir_view import FhirView, InvalidFhir, view_of


@dataclass(frozen=True)
class HookRequest:
    """A validated service request."""

    hook: str
    hook_instance: str
    context: dict[str, Any]
    prefetch: dict[str, Any]
    fhir_server: str | None
    access_token: str | None
    draft_orders: FhirView | None = None
    claim: FhirView | None = None

    @property
    def patient_id(self) -> str:
        """``context.patientId``."""
        return str(self.context["patientId"])

    @property
    def user_id(self) -> str:
        """``context.userId``, e.g. ``Practitioner/123``."""
        return str(self.context["userId"])


def _require_string(container: dict[str, Any], name: str, path: str) -> str:
    value = container.get(name)
    if not isinstance(value, str) or not value.strip():
        raise ApiError(400, f"'{path}' is required and must be a non-empty string", expression=path)
    return value


def invalid_fhir_error(error: InvalidFhir) -> ApiError:
    """The 400 for an element of the request that is not valid FHIR R4, naming the element."""
    root = ".".join(error.path.split(".")[:2])
    return ApiError(400, f"'{root}' is not a valid FHIR R4 resource: {error.path}: {error.message}",
                    expression=error.path)


def _parse_resource(value: Any, path: str, expected: str) -> FhirView:
    """A view of the context's resource; the resources it holds are checked to be FHIR R4 resources now,
    the elements the decision reads when it reads them (see ``plugin.fhir_view``)."""
    if not isinstance(value, dict) or value.get("resourceType") != expected:
        raise ApiError(400, f"'{path}' must be a FHIR {expected} resource", expression=path)
    try:
        view = view_of(value, path)
        if expected == "Bundle":
            _ = [entry.resource for entry in view.entry]
        else:
            _ = view.contained
            read_claim_sequences(view)
    except InvalidFhir as error:
        raise invalid_fhir_error(error) from error
    return view


def _is_http_url(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def _fhir_server(body: dict[str, Any]) -> tuple[str | None, str | None]:
    server = body.get("fhirServer")
    authorization = body.get("fhirAuthorization")
    if server is not None and not _is_http_url(server):
        raise ApiError(400, "'fhirServer' must be an absolute http(s) URL", expression="fhirServer")
    if authorization is None:
        return server, None
    if server is None:
        raise ApiError(400, "'fhirServer' is required when 'fhirAuthorization' is given", expression="fhirServer")
    if not isinstance(authorization, dict):
        raise ApiError(400, "'fhirAuthorization' must be an object", expression="fhirAuthorization")
    token = _require_string(authorization, "access_token", "fhirAuthorization.access_token")
    token_type = authorization.get("token_type", "Bearer")
    if not isinstance(token_type, str) or token_type.lower() != "bearer":
        raise ApiError(400, "'fhirAuthorization.token_type' must be 'Bearer'",
                       expression="fhirAuthorization.token_type")
    return server, token


def parse_hook_request(body: Any, service: ServiceDefinition) -> HookRequest:
    """Validate ``body`` as a call of ``service``; raises ApiError(400) naming the first problem."""
    if not isinstance(body, dict):
        raise ApiError(400, "the request body must be a JSON object")
    hook = _require_string(body, "hook", "hook")
    if hook != service.hook:
        raise ApiError(400, f"service '{service.service_id}' answers hook '{service.hook}', not '{hook}'",
                       expression="hook")
    hook_instance = _require_string(body, "hookInstance", "hookInstance")
    context = body.get("context")
    if not isinstance(context, dict):
        raise ApiError(400, "'context' is required and must be an object", expression="context")
    _require_string(context, "userId", "context.userId")
    patient_id = _require_string(context, "patientId", "context.patientId")
    if "/" in patient_id:
        raise ApiError(400, "'context.patientId' must be a Patient id, not a reference", expression="context.patientId")
    encounter_id = context.get("encounterId")
    if encounter_id is not None and not (isinstance(encounter_id, str) and encounter_id.strip()):
        raise ApiError(400, "'context.encounterId' must be a non-empty string", expression="context.encounterId")
    prefetch = body.get("prefetch")
    if prefetch is None:
        prefetch = {}
    if not isinstance(prefetch, dict):
        raise ApiError(400, "'prefetch' must be an object", expression="prefetch")
    server, token = _fhir_server(body)
    path = f"context.{service.context_resource}"
    if service.context_resource not in context:
        raise ApiError(400, f"'{path}' is required", expression=path)
    resource = context[service.context_resource]
    draft_orders = _parse_resource(resource, path, "Bundle") if service.context_resource == "draftOrders" else None
    claim = _parse_resource(resource, path, "Claim") if service.context_resource == "claim" else None
    return HookRequest(hook, hook_instance, context, prefetch, server, token, draft_orders, claim)
