"""Writing CDS Hooks request fixtures as FHIR Bulk Data exports, for the tests of ``needlecheck scan``."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any


def request_resources(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The claim of a ``claim-create`` request and every resource of its prefetch (Bundles flattened)."""
    resources = [body["context"]["claim"]]
    for value in (body.get("prefetch") or {}).values():
        if not isinstance(value, dict):
            continue
        if value.get("resourceType") == "Bundle":
            resources += [entry["resource"] for entry in value.get("entry") or [] if "resource" in entry]
        elif value.get("resourceType") != "OperationOutcome":
            resources.append(value)
    return resources


def write_export(folder: Path, resources: Iterable[dict[str, Any]]) -> Path:
    """One ``<Type>.ndjson`` per resource type, one resource a line, each ``Type/id`` once."""
    folder.mkdir(parents=True, exist_ok=True)
    by_type: dict[str, dict[str, dict[str, Any]]] = {}
    for resource in resources:
        by_type.setdefault(resource["resourceType"], {})[resource["id"]] = resource
    for kind, items in by_type.items():
        lines = "".join(json.dumps(resource) + "\n" for resource in items.values())
        (folder / f"{kind}.ndjson").write_text(lines, encoding="utf-8")
    return folder
