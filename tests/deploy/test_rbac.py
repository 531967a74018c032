"""The chart's RBAC grants exactly the Kubernetes API calls the adapters make, in both directions.

The calls are read from the adapters' source (every ``<verb>_namespaced_<kind>`` /
``<verb>_cluster_<kind>`` method of the kubernetes client they reference), mapped to RBAC verbs
(create, patch, list, read/get -> get, delete, replace -> update; a server-side apply -- a PATCH
with ``application/apply-patch+yaml`` -- creates a missing object, so it needs create as well),
and compared with the Roles and ClusterRoles bound to each service's ServiceAccount.
"""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import pytest

from deploy.helpers import ROOT, Manifest, Render, of_kind

pytestmark = pytest.mark.contract

Rule = tuple[str, str, str, str]  # (scope, apiGroup, resource, verb); scope: namespace|cluster

ADAPTERS = {
    "serving": ROOT / "services/serving/src/llmops_serving/adapters",
    "workflow": ROOT / "services/workflow/src/llmops_workflow/adapters",
}
_METHOD = re.compile(r"^(create|patch|list|read|get|delete|replace)_(namespaced|cluster)_(\w+)$")
_VERBS = {"read": "get", "replace": "update"}
_TYPED = {  # typed API methods' kinds -> (apiGroup, resource)
    "deployment": ("apps", "deployments"),
    "service": ("", "services"),
    "job": ("batch", "jobs"),
}
APPLY = "application/apply-patch+yaml"


def _is_apply(node: ast.expr, module: object) -> bool:
    if isinstance(node, ast.Constant):
        return node.value == APPLY
    if isinstance(node, ast.Name):
        return getattr(module, node.id, None) == APPLY
    return False


def _value(node: ast.expr, module: object) -> str:
    """A constant argument: a literal, a module constant or ``names.CONSTANT``."""
    if isinstance(node, ast.Constant):
        return str(node.value)
    if isinstance(node, ast.Name):
        return str(getattr(module, node.id))
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
        return str(getattr(getattr(module, node.value.id), node.attr))
    raise AssertionError(f"cannot resolve {ast.unparse(node)}")


def calls_in(path: Path) -> set[Rule]:
    """The RBAC rules the kubernetes client calls in one adapter module need."""
    package = path.parent.parent.name
    module = importlib.import_module(f"{package}.adapters.{path.stem}")
    tree = ast.parse(path.read_text())
    rules: set[Rule] = set()
    for function in ast.walk(tree):
        if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        calls = [n for n in ast.walk(function) if isinstance(n, ast.Call)]
        applies = any(
            kw.arg == "_content_type" and _is_apply(kw.value, module)
            for call in calls
            for kw in call.keywords
        )
        for node in ast.walk(function):
            if not (isinstance(node, ast.Attribute) and (match := _METHOD.match(node.attr))):
                continue
            verb, scope, kind = match.groups()
            verb = _VERBS.get(verb, verb)
            scope = "namespace" if scope == "namespaced" else "cluster"
            if kind == "custom_object":
                # call(where, api.<method>, group, version, [namespace,] plural, ...)
                [call] = [c for c in calls if node in c.args]
                args = call.args[call.args.index(node) + 1 :]
                group = _value(args[0], module)
                plural = _value(args[3] if scope == "namespace" else args[2], module)
            else:
                assert kind in _TYPED, f"{path.name}: map the kind of {node.attr} in _TYPED"
                group, plural = _TYPED[kind]
            rules.add((scope, group, plural, verb))
            if verb == "patch" and applies:  # server-side apply creates what is missing
                rules.add((scope, group, plural, "create"))
    return rules


def code_rules(service: str) -> set[Rule]:
    found: set[Rule] = set()
    for path in sorted(ADAPTERS[service].glob("*.py")):
        found |= calls_in(path)
    return found


def granted(docs: list[Manifest], account: str) -> dict[str, set[Rule]]:
    """Per namespace (or 'cluster'), the rules bound to ServiceAccount ``account``."""
    roles = {(d["kind"], d["metadata"].get("namespace"), d["metadata"]["name"]): d for d in docs}
    found: dict[str, set[Rule]] = {}
    for binding in of_kind(docs, "RoleBinding") + of_kind(docs, "ClusterRoleBinding"):
        if not any(s["name"] == account for s in binding["subjects"]):
            continue
        ref = binding["roleRef"]
        namespace = binding["metadata"].get("namespace") if ref["kind"] == "Role" else None
        role = roles[(ref["kind"], namespace, ref["name"])]
        scope = "namespace" if ref["kind"] == "Role" else "cluster"
        rules = found.setdefault(namespace or "cluster", set())
        for rule in role["rules"]:
            for group in rule["apiGroups"]:
                for resource in rule["resources"]:
                    rules |= {(scope, group, resource, verb) for verb in rule["verbs"]}
    return found


def test_the_scan_finds_the_calls_it_should() -> None:
    """The source scan itself: known calls of both adapters are found and mapped."""
    serving = code_rules("serving")
    assert ("namespace", "serving.kserve.io", "inferenceservices", "patch") in serving
    assert ("namespace", "serving.kserve.io", "inferenceservices", "create") in serving  # SSA
    assert ("cluster", "serving.kserve.io", "inferenceservices", "list") in serving
    assert ("namespace", "", "services", "delete") in serving
    workflow = code_rules("workflow")
    assert ("namespace", "batch", "jobs", "create") in workflow
    assert ("namespace", "argoproj.io", "workflows", "get") in workflow


@pytest.mark.parametrize("service", sorted(ADAPTERS))
def test_rbac_grants_exactly_the_verbs_the_code_uses(render: Render, service: str) -> None:
    needed = code_rules(service)
    namespaced = {r for r in needed if r[0] == "namespace"}
    cluster = {r for r in needed if r[0] == "cluster"}
    assert namespaced
    assert all("*" not in part for rule in needed for part in rule)

    granted_by = granted(render(), f"llmops-{service}")
    expected_namespaces = (
        {"llm-ops-dev", "llm-ops-stg", "llm-ops-prod"} if service == "serving" else {"llm-ops-prod"}
    )
    assert set(granted_by) == expected_namespaces | {"cluster"}
    for namespace in expected_namespaces:
        assert granted_by[namespace] == namespaced, namespace  # no more, no less
    assert granted_by["cluster"] == cluster


def test_other_services_get_no_kubernetes_permissions(render: Render) -> None:
    docs = render()
    for service in ("gateway", "tracking", "registry", "versioning", "github-sync"):
        assert not granted(docs, f"llmops-{service}")


def test_roles_follow_the_environments_in_values(render: Render) -> None:
    docs = render(
        {
            "services": {"serving": {"environments": ["stg"]}, "workflow": {"namespace": "ml"}},
            "rbac": {"clusterReadiness": False},
        }
    )
    assert set(granted(docs, "llmops-serving")) == {"llm-ops-stg"}
    assert set(granted(docs, "llmops-workflow")) == {"ml"}
    assert not of_kind(docs, "ClusterRole")
    assert not of_kind(render({"rbac": {"create": False}}), "Role")
