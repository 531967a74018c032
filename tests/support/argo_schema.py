"""Strict validation of rendered Workflows against Argo's published JSON Schema (v4.1.2 line).

``../shared/schemas/argo/schema.json`` (beside this repository) is JSON Schema 2020-12 with
every Argo and Kubernetes type under ``definitions``; the Workflow is
``definitions["io.argoproj.workflow.v1alpha1.Workflow"]``. It is made strict the way the API
server would be with ``fieldValidation=Strict``: wherever a definition lists ``properties`` and
neither sets ``additionalProperties`` nor ``x-kubernetes-preserve-unknown-fields``, unknown
keys are rejected. Note the schema's spellings: ``IntOrString`` and ``Quantity`` are
``type: string`` there (the Go types accept both on the wire, the schema documents strings).
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import jsonschema

REPO_ROOT = Path(__file__).resolve().parents[2]
SCHEMA_PATH = REPO_ROOT.parent / "shared" / "schemas" / "argo" / "schema.json"
WORKFLOW_DEFINITION = "io.argoproj.workflow.v1alpha1.Workflow"


def strict(node: Any) -> Any:
    """A copy of a schema node with unknown keys forbidden where it lists its properties."""
    if isinstance(node, list):
        return [strict(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: strict(value) for key, value in node.items()}
    if (
        "properties" in out
        and not out.get("x-kubernetes-preserve-unknown-fields")
        and "additionalProperties" not in out
    ):
        out["additionalProperties"] = False
    return out


@functools.cache
def _definitions() -> dict[str, Any]:
    document = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    definitions: dict[str, Any] = strict(document["definitions"])
    return definitions


@functools.cache
def validator(definition: str = WORKFLOW_DEFINITION) -> jsonschema.protocols.Validator:
    """A 2020-12 validator of one definition of the strict schema (refs resolve in place)."""
    definitions = _definitions()
    if definition not in definitions:
        raise KeyError(f"{definition} is not in {SCHEMA_PATH}")
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$ref": f"#/definitions/{definition}",
        "definitions": definitions,
    }
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def schema_errors(obj: dict[str, Any], definition: str = WORKFLOW_DEFINITION) -> list[str]:
    """Every violation of the strict schema, as ``path: message`` lines."""
    return sorted(
        f"{'.'.join(str(p) for p in error.absolute_path) or '<root>'}: {error.message}"
        for error in validator(definition).iter_errors(obj)
    )
