"""The chart's two shapes for the admin API and the console (docs/operations.md):
one port for everything (default), or ``adminListener.enabled`` — AUTHD_ADMIN_LISTEN
on port 9000 behind a Service of its own that the Ingress never routes to."""

from __future__ import annotations

from tests.deploy.test_helm import CI_VALUES, containers, env_of, one, render, with_values


def services(documents: list[dict[str, object]]) -> dict[str, dict[str, object]]:
    return {str(doc["metadata"]["name"]): doc for doc in documents  # type: ignore[index]
            if doc["kind"] == "Service"}


def test_by_default_one_port_serves_everything() -> None:
    """No admin listener: one Service, no AUTHD_ADMIN_LISTEN, one container port."""
    documents = render(CI_VALUES)
    assert list(services(documents)) == ["prod-authd"]
    [container] = containers(one(documents, "Deployment"))
    assert "AUTHD_ADMIN_LISTEN" not in env_of(container)
    assert [p["name"] for p in container["ports"]] == ["http"]


def test_the_admin_listener_gets_its_port_and_its_own_service() -> None:
    """Enabled: AUTHD_ADMIN_LISTEN=0.0.0.0:9000, a container port ``admin`` and the
    ClusterIP Service ``<name>-admin`` on it; the Ingress still names the public one."""
    documents = render(with_values(adminListener={"enabled": True}))
    [container] = containers(one(documents, "Deployment"))
    assert env_of(container)["AUTHD_ADMIN_LISTEN"]["value"] == "0.0.0.0:9000"
    assert {"name": "admin", "containerPort": 9000, "protocol": "TCP"} in container["ports"]
    admin = services(documents)["prod-authd-admin"]
    spec = admin["spec"]
    assert spec["type"] == "ClusterIP"  # type: ignore[index]
    assert spec["ports"][0]["targetPort"] == "admin"  # type: ignore[index]
    ingress = one(documents, "Ingress")
    backends = {path["backend"]["service"]["name"]
                for rule in ingress["spec"]["rules"] for path in rule["http"]["paths"]}
    assert backends == {"prod-authd"}
