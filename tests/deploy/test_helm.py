"""The Helm chart passes Helm's own lint and renders the manifests a production
deployment needs. Helm's Go SDK runs in-process through helm-python-sdk (PyPI):
`helm lint` and offline rendering (what `helm template` does) without the helm CLI."""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from helm_python import chart as helm
from helm_python.errors import HelmRenderError

from tests.support.servers import REPO

CHART = REPO / "deploy" / "helm" / "authd"
CI_VALUES: dict[str, Any] = yaml.safe_load((CHART / "ci" / "ci-values.yaml").read_text())
WARNING = 2


def render(values: dict[str, Any]) -> list[dict[str, Any]]:
    """Every manifest the chart renders for a fresh install of release `prod`."""
    manifests = helm.Chart.load(CHART).render(values, name="prod", namespace="auth",
                                              is_install=True)
    documents: list[dict[str, Any]] = []
    for path, text in manifests.items():
        if not path.endswith(".yaml"):
            continue
        documents.extend(doc for doc in yaml.safe_load_all(text) if doc)
    return documents


def one(documents: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = [doc for doc in documents if doc["kind"] == kind]
    assert len(found) == 1, f"{len(found)} {kind} manifests"
    return found[0]


def with_values(**changes: Any) -> dict[str, Any]:
    values = copy.deepcopy(CI_VALUES)
    values.update(changes)
    return values


def containers(workload: dict[str, Any]) -> list[dict[str, Any]]:
    return list(workload["spec"]["template"]["spec"]["containers"])


def env_of(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {item["name"]: item for item in container["env"]}


def strings(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for value in node.values():
            yield from strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from strings(value)
    elif isinstance(node, str):
        yield node


def test_helm_lint_passes_in_strict_mode() -> None:
    """`helm lint --strict` with the chart's own values reports no warning or error."""
    report = helm.lint(CHART, strict=True)
    assert report["errors"] == []
    assert [m for m in report["messages"] if m["severity"] >= WARNING] == []


def test_helm_lint_passes_with_every_option_enabled() -> None:
    """`helm lint --strict` with HPA, ServiceMonitor and Ingress on reports no problem."""
    report = helm.lint(CHART, CI_VALUES, strict=True)
    assert report["errors"] == []
    assert [m for m in report["messages"] if m["severity"] >= WARNING] == []


def test_rendering_refuses_to_guess_the_issuer_and_secrets() -> None:
    """Without an issuer and the Secret names the chart does not render."""
    with pytest.raises(HelmRenderError, match="issuer is required"):
        render({})
    values = with_values(kek={"existingSecret": ""})
    with pytest.raises(HelmRenderError, match=r"kek\.existingSecret is required"):
        render(values)


def test_every_part_is_rendered() -> None:
    """Deployment, Service, PDB, migration Job, HPA, ServiceMonitor and Ingress render once each."""
    kinds = sorted(doc["kind"] for doc in render(CI_VALUES))
    assert kinds == sorted(["Deployment", "Service", "PodDisruptionBudget", "Job",
                            "HorizontalPodAutoscaler", "ServiceMonitor", "Ingress"])


def test_optional_parts_are_off_by_default() -> None:
    """With only the required values, no HPA, ServiceMonitor or Ingress, and fixed replicas."""
    documents = render({key: CI_VALUES[key] for key in ("issuer", "kek", "database")})
    kinds = {doc["kind"] for doc in documents}
    assert kinds.isdisjoint({"HorizontalPodAutoscaler", "ServiceMonitor", "Ingress"})
    assert one(documents, "Deployment")["spec"]["replicas"] == 2


def test_an_hpa_owns_the_replica_count() -> None:
    """When the HPA is on, the Deployment sets no replicas and the HPA targets it."""
    documents = render(CI_VALUES)
    deployment = one(documents, "Deployment")
    assert "replicas" not in deployment["spec"]
    target = one(documents, "HorizontalPodAutoscaler")["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", deployment["metadata"]["name"])


def test_probes_use_healthz_and_readyz() -> None:
    """Startup and liveness probe /healthz; readiness probes /readyz."""
    container = containers(one(render(CI_VALUES), "Deployment"))[0]
    assert container["startupProbe"]["httpGet"]["path"] == "/healthz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["args"] == ["serve"]


def test_pods_run_non_root_on_a_read_only_root() -> None:
    """Server and migration pods: non-root uid, read-only root, no privilege, no capability."""
    documents = render(CI_VALUES)
    for workload in (one(documents, "Deployment"), one(documents, "Job")):
        pod = workload["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] != 0
        assert pod["automountServiceAccountToken"] is False
        for container in pod["containers"]:
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] is True
            assert context["allowPrivilegeEscalation"] is False
            assert context["capabilities"]["drop"] == ["ALL"]
            assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]  # noqa: S108
            assert container["resources"]["requests"] and container["resources"]["limits"]


def test_replicas_spread_and_survive_disruption() -> None:
    """Topology spread over nodes and zones, and a PDB over the serving pods."""
    documents = render(CI_VALUES)
    deployment = one(documents, "Deployment")
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    spread = deployment["spec"]["template"]["spec"]["topologySpreadConstraints"]
    assert {c["topologyKey"] for c in spread} == {"kubernetes.io/hostname",
                                                  "topology.kubernetes.io/zone"}
    pdb = one(documents, "PodDisruptionBudget")["spec"]
    assert pdb["maxUnavailable"] == 1
    assert pdb["selector"]["matchLabels"].items() <= pod_labels.items()


def test_secrets_are_references_never_values() -> None:
    """The database URL comes from a Secret key and the KEK is a mounted Secret file."""
    documents = render(CI_VALUES)
    for workload in (one(documents, "Deployment"), one(documents, "Job")):
        env = env_of(containers(workload)[0])
        assert env["AUTHD_DATABASE_URL"]["valueFrom"]["secretKeyRef"] == {
            "name": "authd-database", "key": "url"}
        assert "AUTHD_KEK" not in env
        assert env["AUTHD_KEK_FILE"]["value"] == "/var/run/secrets/authd/kek/kek"
        volumes = {v["name"]: v for v in workload["spec"]["template"]["spec"]["volumes"]}
        assert volumes["kek"]["secret"]["secretName"] == "authd-kek"
    for text in strings(documents):
        assert not re.search(r"postgres(ql)?://[^/\s]*:[^@/\s]+@", text), text


def test_values_file_holds_no_secret_value() -> None:
    """values.yaml names Secrets; it has no place for a KEK, password or database URL."""
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert set(values["kek"]) == {"existingSecret", "key"}
    assert set(values["database"]) == {"existingSecret", "key"}
    for text in strings(values):
        assert "://" not in text or "@" not in text, text
        assert not re.fullmatch(r"[A-Za-z0-9+/]{43}=", text), text


def test_a_redis_url_with_a_password_can_come_from_a_secret() -> None:
    """redis.existingSecret puts AUTHD_REDIS_URL behind a secretKeyRef."""
    values = with_values(redis={"existingSecret": "authd-redis", "key": "url"})
    env = env_of(containers(one(render(values), "Deployment"))[0])
    assert env["AUTHD_REDIS_URL"]["valueFrom"]["secretKeyRef"]["name"] == "authd-redis"


def test_migration_job_is_a_pre_install_and_pre_upgrade_hook() -> None:
    """The Job runs `authd migrate` as a pre-install/pre-upgrade hook and retries on failure."""
    job = one(render(CI_VALUES), "Job")
    hooks = job["metadata"]["annotations"]["helm.sh/hook"].split(",")
    assert set(hooks) == {"pre-install", "pre-upgrade"}
    assert "before-hook-creation" in job["metadata"]["annotations"]["helm.sh/hook-delete-policy"]
    assert containers(job)[0]["args"] == ["migrate"]
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"


def test_migration_pods_never_receive_traffic() -> None:
    """The Service and the PDB select the serving pods, not the migration Job's pods."""
    documents = render(CI_VALUES)
    job_labels = one(documents, "Job")["spec"]["template"]["metadata"]["labels"]
    server_labels = one(documents, "Deployment")["spec"]["template"]["metadata"]["labels"]
    selector = one(documents, "Service")["spec"]["selector"]
    assert selector.items() <= server_labels.items()
    assert not selector.items() <= job_labels.items()
    assert one(documents, "Deployment")["spec"]["selector"]["matchLabels"] == selector


def test_service_monitor_and_ingress_point_at_the_service() -> None:
    """The ServiceMonitor selects the Service and its port; the Ingress routes to it with TLS."""
    documents = render(CI_VALUES)
    service = one(documents, "Service")
    port_names = {port["name"] for port in service["spec"]["ports"]}
    monitor = one(documents, "ServiceMonitor")["spec"]
    assert monitor["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert monitor["endpoints"][0]["port"] in port_names
    assert monitor["endpoints"][0]["path"] == "/metrics"
    ingress = one(documents, "Ingress")["spec"]
    assert ingress["tls"][0]["hosts"] == ["auth.example.com"]
    backend = ingress["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend["name"] == service["metadata"]["name"]
    assert backend["port"]["name"] in port_names


def test_pods_can_serve_tls_themselves() -> None:
    """tls.existingSecret mounts the certificate, sets AUTHD_TLS_* and probes over HTTPS."""
    documents = render(with_values(tls={"existingSecret": "authd-tls"}))
    container = containers(one(documents, "Deployment"))[0]
    env = env_of(container)
    assert env["AUTHD_TLS_CERT_FILE"]["value"] == "/var/run/secrets/authd/tls/tls.crt"
    assert env["AUTHD_TLS_KEY_FILE"]["value"] == "/var/run/secrets/authd/tls/tls.key"
    assert container["readinessProbe"]["httpGet"]["scheme"] == "HTTPS"
    assert one(documents, "ServiceMonitor")["spec"]["endpoints"][0]["scheme"] == "https"


def notes(values: dict[str, Any]) -> str:
    """The NOTES.txt Helm prints after an install of release `prod`."""
    manifests = helm.Chart.load(CHART).render(values, name="prod", namespace="auth",
                                              is_install=True)
    return manifests["authd/templates/NOTES.txt"]


def without_redis(**changes: Any) -> dict[str, Any]:
    values = with_values(**{"replicaCount": 1, "workers": 1,
                            "autoscaling": {"enabled": False}, **changes})
    del values["redis"]
    return values


@pytest.mark.parametrize("changes", [
    {"replicaCount": 2},
    {"workers": 2},
    {"autoscaling": {"enabled": True}},
], ids=["replicas", "workers", "autoscaling"])
def test_notes_warn_when_several_processes_run_without_redis(changes: dict[str, Any]) -> None:
    """Rate limits and invalidation are per process: two workers in one pod, or an HPA
    that may add pods, need Redis as much as two replicas do."""
    assert "WARNING: no Redis" in notes(without_redis(**changes))
    assert "WARNING: no Redis" not in notes(with_values(**changes))


def test_notes_do_not_warn_for_a_single_process_without_redis() -> None:
    """One replica with one worker and no HPA is correct without Redis."""
    assert "WARNING" not in notes(without_redis())


@pytest.mark.parametrize("name", [
    "AUTHD_WORKERS", "AUTHD_HOST", "AUTHD_PORT", "AUTHD_LOG_FORMAT", "AUTHD_ISSUER",
    "AUTHD_REDIS_URL", "AUTHD_TRUSTED_PROXIES", "AUTHD_KEK",
])
def test_extra_env_cannot_repeat_a_name_the_chart_sets(name: str) -> None:
    """A duplicate env name is no error in Kubernetes (one of the two silently wins),
    so extraEnv naming a chart-managed variable fails the render, naming it."""
    values = with_values(extraEnv={"AUTHD_KEY_ROTATION_INTERVAL": "30d", name: "x"})
    with pytest.raises(HelmRenderError, match=rf"extraEnv\.{name}: the chart sets {name}"):
        render(values)


def test_extra_env_adds_other_settings_once() -> None:
    """A setting the chart does not manage reaches both containers, and no env name
    appears twice in either."""
    documents = render(CI_VALUES)
    for workload in (one(documents, "Deployment"), one(documents, "Job")):
        names = [item["name"] for item in containers(workload)[0]["env"]]
        assert "AUTHD_KEY_ROTATION_INTERVAL" in names
        assert len(names) == len(set(names)), names


def test_default_workers_match_the_cpu_request() -> None:
    """values.yaml asks for about one worker per requested CPU, and its defaults do so."""
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    cpu = str(values["resources"]["requests"]["cpu"])
    cores = int(cpu[:-1]) / 1000 if cpu.endswith("m") else float(cpu)
    assert values["workers"] == cores
