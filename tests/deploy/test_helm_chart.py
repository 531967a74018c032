"""The Helm chart, rendered by Helm: it lints, every manifest is valid Kubernetes (strict schemas of
the oldest and newest versions kubernetes-validate ships within the chart's kubeVersion), and
what it deploys is what the services need (their settings validate from the rendered env)."""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from typing import Any

import helm_python
import jsonschema
import kubernetes_validate
import pytest
import yaml
from kubernetes_validate.utils import all_versions

from deploy.helpers import (
    CHART,
    SERVICES,
    Manifest,
    Render,
    by_name,
    container_env,
    default_port,
    env_names,
    of_kind,
    secret_env_names,
)

pytestmark = pytest.mark.contract

FULL_VALUES: dict[str, Any] = {
    "environment": "stg",
    "streamNamespace": "stg:",
    "serviceMonitor": {"enabled": True, "labels": {"release": "prometheus"}},
    "integrations": {
        "experimentTracking": False,
        "servingFramework": False,
        "workflowOrchestration": False,
        "modelRegistry": False,
        "dataVersioning": False,
    },
    "services": {
        "registry": {"persistence": {"enabled": True, "storageClass": "fast"}},
        "gateway": {
            "networkPolicy": {
                "from": [
                    {"namespaceSelector": {"matchLabels": {"name": "ingress-nginx"}}},
                ]
            }
        },
        "serving": {"environments": ["stg"]},
        "workflow": {"namespace": "pipelines"},
        "github-sync": {"env": {"GITHUB_REPO_OWNER": "acme", "GITHUB_REPO_NAME": "values"}},
    },
    "mlflow": {"uiUrl": "https://mlflow.example.com", "credentials": {"existingSecret": "mlflow"}},
    "postgresql": {"migrationJob": {"enabled": False}},
    "oidc": {
        "issuer": "https://sso.example.com/realms/ml",
        "audience": "llmops",
        "roleMap": {"ml-admins": ["admin"], "ml-dev": ["dev:operator"]},
        "subjectClaim": "email",
    },
    "openlineage": {
        "url": "http://marquez.lineage.svc:5000",
        "apiKey": {"existingSecret": "marquez"},
    },
    "console": {
        "argoUrl": "https://argo.example.com",
        "gitCommitUrl": "https://github.com/acme/deploy/commit/{sha}",
    },
    "imagePullSecrets": [{"name": "registry-credentials"}],
}
"""Every optional part switched on or away from its default."""

VALUE_SETS = {"defaults": {}, "full": FULL_VALUES}

MLFLOW_CLIENT_ENV = {
    "MLFLOW_TRACKING_USERNAME",
    "MLFLOW_TRACKING_PASSWORD",
    "MLFLOW_TRACKING_TOKEN",
}
"""Read by the MLflow client itself (not a service setting), for an MLflow behind auth."""

SECRET_STANDINS = {
    "REDIS_URL": "redis://user:password@redis:6379/0",
    "DATABASE_URL": "postgresql+psycopg://gateway:password@postgres:5432/gateway",
}

# a minimal schema of the one custom resource the chart renders (monitoring.coreos.com/v1)
SERVICE_MONITOR_SCHEMA = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "monitoring.coreos.com/v1"},
        "kind": {"const": "ServiceMonitor"},
        "spec": {
            "type": "object",
            "additionalProperties": False,
            "required": ["selector", "endpoints"],
            "properties": {
                "selector": {"type": "object", "required": ["matchLabels"]},
                "namespaceSelector": {"type": "object"},
                "endpoints": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["port", "path"],
                        "properties": {
                            "port": {"type": "string"},
                            "path": {"type": "string"},
                            "interval": {"type": "string", "pattern": "^[0-9]+(ms|s|m|h)$"},
                            "scrapeTimeout": {"type": "string", "pattern": "^[0-9]+(ms|s|m|h)$"},
                        },
                    },
                },
            },
        },
    },
}


def kube_versions() -> list[str]:
    """The oldest version the chart supports that kubernetes-validate knows, and the newest."""
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    minimum = tuple(
        int(p) for p in chart["kubeVersion"].removeprefix(">=").split("-")[0].split(".")
    )
    known = [v for v in all_versions() if tuple(int(p) for p in v.split(".")) >= minimum]
    assert known, f"kubernetes-validate ships no version >= {minimum}"
    return sorted({known[0], known[-1]})


@pytest.fixture(params=sorted(VALUE_SETS), scope="module")
def rendered(request: pytest.FixtureRequest, render: Render) -> list[Manifest]:
    return render(copy.deepcopy(VALUE_SETS[request.param]))


def test_the_chart_lints_clean_in_strict_mode() -> None:
    for values in VALUE_SETS.values():
        report = helm_python.lint(
            CHART, copy.deepcopy(values), strict=True, kube_version=f"v{kube_versions()[0]}"
        )
        problems = [m for m in report["messages"] if m["severity"] >= 2]
        assert not report["errors"], report
        assert not problems, report


@pytest.mark.parametrize("version", kube_versions())
def test_every_manifest_is_valid_kubernetes(rendered: list[Manifest], version: str) -> None:
    kinds = set()
    for doc in rendered:
        kinds.add(doc["kind"])
        if doc["kind"] == "ServiceMonitor":
            jsonschema.validate(doc, SERVICE_MONITOR_SCHEMA)
            continue
        kubernetes_validate.validate(doc, version, strict=True)  # raises on any deviation
    assert {
        "Deployment",
        "Service",
        "ServiceAccount",
        "PodDisruptionBudget",
        "NetworkPolicy",
    } <= kinds


def test_a_wrong_manifest_is_caught() -> None:
    """The validation above can fail: an unknown field in a probe is refused."""
    bad = {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": "x"},
        "spec": {"maxUnavailable": 1, "selector": {}, "maxUnavalable": 1},
    }
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, kube_versions()[0], strict=True)


def test_one_deployment_service_account_service_pdb_and_policy_per_service(
    rendered: list[Manifest],
) -> None:
    for kind in ("Deployment", "Service", "ServiceAccount", "PodDisruptionBudget"):
        assert sorted(by_name(rendered, kind)) == sorted(f"llmops-{s}" for s in SERVICES), kind
    # one per service, and one (a hook) for the migration Job when there is one
    hooks = ["llmops-gateway-migrate"] if of_kind(rendered, "Job") else []
    expected = sorted([*(f"llmops-{s}" for s in SERVICES), *hooks])
    assert sorted(by_name(rendered, "NetworkPolicy")) == expected


def test_deployments_run_each_service_hardened_with_probes(rendered: list[Manifest]) -> None:
    services = by_name(rendered, "Service")
    for name, deployment in by_name(rendered, "Deployment").items():
        service = name.removeprefix("llmops-")
        pod = deployment["spec"]["template"]["spec"]
        [container] = pod["containers"]
        assert container["image"].endswith(f"/llmops-{service}:0.1.0")
        [port] = container["ports"]
        assert port == {"name": "http", "containerPort": default_port(service), "protocol": "TCP"}
        assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
        assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
        assert container["startupProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] == 10001
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert container["securityContext"]["allowPrivilegeEscalation"] is False
        assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
        assert container["resources"]["requests"]
        assert container["resources"]["limits"]["memory"]
        assert pod["serviceAccountName"] == name
        # only the services that drive the cluster get an API token
        assert pod["automountServiceAccountToken"] is (service in {"serving", "workflow"})
        mounts = {m["mountPath"] for m in container["volumeMounts"]}
        assert mounts == {"/tmp", "/data"}  # writable places of a read-only root filesystem
        selector = deployment["spec"]["selector"]["matchLabels"]
        assert selector.items() <= deployment["spec"]["template"]["metadata"]["labels"].items()
        assert services[name]["spec"]["selector"] == selector
        assert services[name]["spec"]["ports"][0]["port"] == default_port(service)


def test_replicas_pdbs_and_persistence(render: Render) -> None:
    docs = render()
    deployments = by_name(docs, "Deployment")
    assert deployments["llmops-gateway"]["spec"]["replicas"] == 2
    # the versioning worker keeps git+DVC repositories: a volume, one replica, Recreate
    versioning = deployments["llmops-versioning"]["spec"]
    assert versioning["replicas"] == 1
    assert versioning["strategy"]["type"] == "Recreate"
    [claim] = of_kind(docs, "PersistentVolumeClaim")
    assert claim["metadata"]["name"] == "llmops-versioning-data"
    volumes = {v["name"]: v for v in versioning["template"]["spec"]["volumes"]}
    assert volumes["data"]["persistentVolumeClaim"]["claimName"] == "llmops-versioning-data"
    for pdb in of_kind(docs, "PodDisruptionBudget"):
        # maxUnavailable, never minAvailable=replicas: a one-replica worker must not block drains
        # and unready pods (a backend down) may be evicted, or an outage blocks every drain
        assert pdb["spec"] == {
            "maxUnavailable": 1,
            "unhealthyPodEvictionPolicy": "AlwaysAllow",
            "selector": deployments[pdb["metadata"]["name"]]["spec"]["selector"],
        }

    tuned = render({"services": {"tracking": {"replicas": 5, "pdb": {"minAvailable": 3}}}})
    tracking_pdb = by_name(tuned, "PodDisruptionBudget")["llmops-tracking"]["spec"]
    assert tracking_pdb["minAvailable"] == 3
    assert "maxUnavailable" not in tracking_pdb
    assert by_name(tuned, "Deployment")["llmops-tracking"]["spec"]["replicas"] == 5
    disabled = render({"services": {"github-sync": {"enabled": False}}})
    assert "llmops-github-sync" not in by_name(disabled, "Deployment")
    assert "llmops-github-sync" not in by_name(disabled, "NetworkPolicy")


def _plain_env(deployment: Manifest, secrets: Mapping[str, str]) -> dict[str, str]:
    env = {}
    for var in container_env(deployment):
        if "valueFrom" in var:
            ref = var["valueFrom"]["secretKeyRef"]
            assert ref["name"]
            assert ref["key"]
            if ref.get("optional"):
                continue
            env[var["name"]] = secrets.get(var["name"], "a-secret")
        else:
            env[var["name"]] = var["value"]
    return env


@pytest.mark.parametrize("values", sorted(VALUE_SETS))
def test_every_service_starts_on_its_rendered_environment(
    render: Render, values: str, settings_from_env: Callable[[str, Mapping[str, str]], Any]
) -> None:
    """Each container's env (secrets stood in) builds the service's settings: names the service
    reads, values its validators accept, and the wiring the platform needs."""
    docs = render(copy.deepcopy(VALUE_SETS[values]))
    for name, deployment in by_name(docs, "Deployment").items():
        service = name.removeprefix("llmops-")
        env = _plain_env(deployment, SECRET_STANDINS)
        known = env_names(service)
        if service in {"tracking", "github-sync"}:
            known |= MLFLOW_CLIENT_ENV
        unknown = {v["name"] for v in container_env(deployment)} - known
        assert not unknown, f"{service} reads no such setting: {sorted(unknown)}"
        settings = settings_from_env(service, env)  # raises when the service would not start
        assert settings.service_name == service
        assert settings.health_host == "0.0.0.0"
        assert settings.redis_url is not None
        assert settings.environment == ("prod" if values == "defaults" else "stg")
        assert settings.stream_namespace == ("" if values == "defaults" else "stg:")
        if service == "gateway":
            assert settings.host == "0.0.0.0"
            assert settings.port == default_port("gateway")
            assert settings.database_url is not None
            assert settings.api_keys
            assert settings.db_auto_migrate is (values != "defaults")  # else the hook Job does
            if values == "full":  # single sign-on, as the chart's oidc values say
                assert settings.oidc_issuer == "https://sso.example.com/realms/ml"
                assert settings.oidc_audience == "llmops"
                assert settings.oidc_role_map == {
                    "ml-admins": ["admin"],
                    "ml-dev": ["dev:operator"],
                }
                assert settings.oidc_subject_claim == "email"
                assert settings.openlineage_url == "http://marquez.lineage.svc:5000"
                assert settings.openlineage_api_key is not None  # from the Secret
                assert settings.console_argo_url == "https://argo.example.com"
                assert settings.console_git_commit_url is not None
            else:
                assert settings.oidc_issuer is None
                assert settings.openlineage_url is None
                assert settings.console_argo_url is None
        else:
            assert settings.health_port == default_port(service)
        if service == "tracking":
            assert settings.mlflow_webhook_secret is not None
            assert settings.mlflow_webhook_url == (
                f"http://llmops-tracking.llmops.svc:{default_port('tracking')}/mlflow/webhook"
            )
            assert settings.experiment_tracking_enabled is (values == "defaults")
        if service == "serving":
            assert settings.serving_backend == ("kserve" if values == "defaults" else "deployment")
            expected = ["dev", "stg", "prod"] if values == "defaults" else ["stg"]
            assert settings.watch_environments == expected
        if service == "workflow":
            assert settings.workflow_backend == ("argo" if values == "defaults" else "job")
            assert settings.namespace == ("llm-ops-prod" if values == "defaults" else "pipelines")
        if service == "versioning":
            assert settings.data_versioning_enabled is (values == "defaults")
            assert str(settings.dvc_repos_dir).startswith("/data/")


def test_credentials_come_only_from_existing_secrets(rendered: list[Manifest]) -> None:
    assert not of_kind(rendered, "Secret")  # the chart creates none
    for deployment in of_kind(rendered, "Deployment"):
        service = deployment["metadata"]["name"].removeprefix("llmops-")
        credentials = secret_env_names(service)
        assert {"REDIS_URL", "DATABASE_URL"} <= credentials
        for var in container_env(deployment):
            if var["name"] in credentials:
                assert set(var) == {"name", "valueFrom"}, (service, var)
    redis_keys = {
        v["valueFrom"]["secretKeyRef"]["key"]
        for d in of_kind(rendered, "Deployment")
        for v in container_env(d)
        if v["name"] == "REDIS_URL"
    }
    assert redis_keys == {f"{s}-url" for s in SERVICES}  # one ACL user (URL) per service


def test_the_migration_hook_runs_before_the_gateway(render: Render) -> None:
    [job] = of_kind(render(), "Job")
    annotations = job["metadata"]["annotations"]
    assert annotations["helm.sh/hook"] == "pre-install,pre-upgrade"
    [container] = job["spec"]["template"]["spec"]["containers"]
    assert container["args"] == ["migrate"]
    assert container["image"].endswith("/llmops-gateway:0.1.0")
    assert {v["name"] for v in container["env"]} >= {"DATABASE_URL"}
    assert not of_kind(render({"postgresql": {"migrationJob": {"enabled": False}}}), "Job")


def test_network_policies_allow_only_what_each_service_talks_to(render: Render) -> None:
    docs = render(copy.deepcopy(FULL_VALUES))
    policies = by_name(docs, "NetworkPolicy")

    def egress_ports(name: str) -> set[int]:
        rules = policies[f"llmops-{name}"]["spec"]["egress"]
        return {p["port"] for rule in rules for p in rule["ports"]}

    assert egress_ports("gateway") == {53, 6379, 5432, 5000, 80, 443}
    assert 5432 not in egress_ports("tracking")  # only the gateway reaches PostgreSQL
    assert egress_ports("serving") == {53, 6379, 443, 6443}  # Redis and the Kubernetes API
    policies.pop("llmops-gateway-migrate", None)
    # the migration Job's: a hook created just before the Job, DNS and PostgreSQL only
    migrate = by_name(render({}), "NetworkPolicy")["llmops-gateway-migrate"]
    assert migrate["metadata"]["annotations"]["helm.sh/hook-weight"] == "-1"
    assert migrate["spec"]["ingress"] == []
    assert {p["port"] for rule in migrate["spec"]["egress"] for p in rule["ports"]} == {53, 5432}
    for name, policy in policies.items():
        spec = policy["spec"]
        assert spec["policyTypes"] == ["Ingress", "Egress"]
        assert spec["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == (
            name.removeprefix("llmops-")
        )
        for rule in spec["ingress"]:
            assert rule["ports"] == [{"port": "http", "protocol": "TCP"}]
    gateway_from = policies["llmops-gateway"]["spec"]["ingress"][0]["from"]
    assert gateway_from == FULL_VALUES["services"]["gateway"]["networkPolicy"]["from"]
    tracking_from = [r["from"] for r in policies["llmops-tracking"]["spec"]["ingress"]]
    mlflow_namespace = {"kubernetes.io/metadata.name": "mlflow"}
    assert [{"namespaceSelector": {"matchLabels": mlflow_namespace}}] in tracking_from
    assert not by_name(render({"networkPolicy": {"enabled": False}}), "NetworkPolicy")


def test_an_unknown_egress_peer_fails_the_render(helm_chart: helm_python.Chart) -> None:
    values = {"services": {"registry": {"networkPolicy": {"egressTo": ["redis", "nowhere"]}}}}
    with pytest.raises(helm_python.HelmError, match=r"networkPolicy\.peers\.nowhere"):
        helm_chart.render(values, name="llmops", namespace="llmops")


def test_the_service_monitor_scrapes_every_service(render: Render) -> None:
    docs = render({"serviceMonitor": {"enabled": True}})
    [monitor] = of_kind(docs, "ServiceMonitor")
    selector = monitor["spec"]["selector"]["matchLabels"]
    for service in of_kind(docs, "Service"):
        assert selector.items() <= service["metadata"]["labels"].items()
        assert service["spec"]["ports"][0]["name"] == monitor["spec"]["endpoints"][0]["port"]
    assert monitor["spec"]["endpoints"][0]["path"] == "/metrics"
    assert not of_kind(render(), "ServiceMonitor")
