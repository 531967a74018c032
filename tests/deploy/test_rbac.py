"""The chart's RBAC grants exactly the Kubernetes API calls the adapters make, in both directions.

The calls are read from the adapters' source (every ``<verb>_namespaced_<kind>`` /
``<verb>_cluster_<kind>`` method of the kubernetes client they reference) and, for custom
resources, from the verbs each adapter declares (``CustomResource(kind, plural, uses=...)``)
with the calls the shared ``CustomObjects`` method of each verb makes (read from its source the
same way). They are mapped to RBAC verbs (create, patch, list, read/get -> get, delete, replace
-> update; a server-side apply -- a PATCH with ``application/apply-patch+yaml`` -- creates a
missing object, so it needs create as well), and compared with the Roles and ClusterRoles bound
to each service's ServiceAccount.
"""

from __future__ import annotations

import ast
import importlib
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from deploy.helpers import ROOT, Manifest, Render, of_kind
from llmops_shared.kube import custom

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


def _calls(
    function: ast.FunctionDef | ast.AsyncFunctionDef, module: object
) -> Iterator[tuple[str, str, str]]:
    """(scope, RBAC verb, client kind) of each kubernetes client method ``function`` references;
    a server-side apply (the apply content type passed in ``function``) adds create."""
    applies = any(
        kw.arg == "_content_type" and _is_apply(kw.value, module)
        for call in ast.walk(function)
        if isinstance(call, ast.Call)
        for kw in call.keywords
    )
    for node in ast.walk(function):
        if not (isinstance(node, ast.Attribute) and (match := _METHOD.match(node.attr))):
            continue
        verb, scope, kind = match.groups()
        verb = _VERBS.get(verb, verb)
        scope = "namespace" if scope == "namespaced" else "cluster"
        yield scope, verb, kind
        if verb == "patch" and applies:  # server-side apply creates what is missing
            yield scope, "create", kind


def _functions(tree: ast.AST) -> Iterator[ast.FunctionDef | ast.AsyncFunctionDef]:
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            yield node


def custom_verbs() -> dict[str, set[tuple[str, str]]]:
    """Per verb of the shared ``CustomObjects``, the (scope, RBAC verb) its method calls."""
    tree = ast.parse(Path(custom.__file__).read_text())
    [verbs] = [
        n for n in ast.walk(tree) if isinstance(n, ast.ClassDef) and n.name == "CustomObjects"
    ]
    found: dict[str, set[tuple[str, str]]] = {}
    for function in _functions(verbs):
        calls = list(_calls(function, custom))
        assert all(kind == "custom_object" for _, _, kind in calls), function.name
        if calls:
            found[function.name] = {(scope, verb) for scope, verb, _ in calls}
    return found


def calls_in(path: Path) -> set[Rule]:
    """The RBAC rules one adapter module needs: the kubernetes client calls it makes, and the
    calls of the verbs its custom resources declare (``CustomResource(..., uses=...)``)."""
    package = path.parent.parent.name
    module = importlib.import_module(f"{package}.adapters.{path.stem}")
    rules: set[Rule] = set()
    for function in _functions(ast.parse(path.read_text())):
        for scope, verb, kind in _calls(function, module):
            assert kind in _TYPED, (
                f"{path.name}: map {kind} in _TYPED (a custom resource: declare it)"
            )
            rules.add((scope, *_TYPED[kind], verb))
    table = custom_verbs()
    for resource in vars(module).values():
        if isinstance(resource, custom.CustomResource):
            group, plural = resource.kind.group, resource.plural
            for used in resource.uses:
                rules |= {(scope, group, plural, verb) for scope, verb in table[used]}
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
    """The source scan itself: known calls of both adapters are found and mapped, the custom
    resources' through the verbs each worker declares."""
    verbs = custom_verbs()
    assert verbs["apply"] == {("namespace", "patch"), ("namespace", "create")}  # SSA
    assert verbs["merge_patch"] == {("namespace", "patch")}
    assert verbs["read"] == {("namespace", "get")}
    assert verbs["ping"] == {("cluster", "list")}
    assert set(verbs) == custom.CUSTOM_VERBS
    serving = code_rules("serving")
    assert ("namespace", "serving.kserve.io", "inferenceservices", "patch") in serving
    assert ("namespace", "serving.kserve.io", "inferenceservices", "create") in serving  # SSA
    assert ("cluster", "serving.kserve.io", "inferenceservices", "list") in serving
    assert ("namespace", "", "services", "delete") in serving
    workflow = code_rules("workflow")
    assert ("namespace", "batch", "jobs", "create") in workflow
    assert ("namespace", "argoproj.io", "workflows", "get") in workflow
    assert ("namespace", "argoproj.io", "workflows", "patch") in workflow  # apply, merge patch
    assert ("namespace", "argoproj.io", "workflows", "delete") not in workflow  # not declared
    assert ("namespace", "serving.kserve.io", "inferenceservices", "delete") in serving


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
