"""deploy/compose.yaml runs the production shape: two authd replicas after a
one-shot migration, PostgreSQL, Redis and Prometheus, the KEK as a secret file,
health checks and start-up ordering by condition."""

from __future__ import annotations

from typing import Any

import yaml

from tests.support.servers import REPO

COMPOSE = REPO / "deploy" / "compose.yaml"


def load() -> dict[str, Any]:
    document = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(document, dict)
    return document


def services() -> dict[str, dict[str, Any]]:
    return dict(load()["services"])


def test_the_stack_has_every_part() -> None:
    """authd, its migration, PostgreSQL, Redis and Prometheus are all services."""
    assert {"authd", "migrate", "postgres", "redis", "prometheus"} <= set(services())


def test_authd_runs_two_replicas_of_authd_serve() -> None:
    """The authd service runs `serve` with two replicas."""
    authd = services()["authd"]
    assert authd["deploy"]["replicas"] == 2
    assert authd["command"] == ["serve"]


def test_migration_is_a_one_shot_run_of_authd_migrate() -> None:
    """migrate runs `authd migrate` once, after PostgreSQL is healthy, never restarted."""
    migrate = services()["migrate"]
    assert migrate["command"] == ["migrate"]
    assert migrate["restart"] == "no"
    assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"


def test_replicas_start_after_migration_and_healthy_dependencies() -> None:
    """authd waits for a completed migration and healthy PostgreSQL and Redis."""
    depends = services()["authd"]["depends_on"]
    assert depends["migrate"]["condition"] == "service_completed_successfully"
    assert depends["postgres"]["condition"] == "service_healthy"
    assert depends["redis"]["condition"] == "service_healthy"


def test_every_long_running_service_has_a_health_check() -> None:
    """Each service declares a health check, except the one-shot migration and
    Prometheus (nothing depends on Prometheus being healthy)."""
    for name, service in services().items():
        if name in {"migrate", "prometheus"}:
            continue
        assert service["healthcheck"]["test"], name


def test_authd_health_check_probes_readiness() -> None:
    """The replicas' health check is healthcheck.py --ready (/readyz): its 503s are the
    only /readyz answers authd counts under compose, so AuthdNotReady depends on it."""
    test = services()["authd"]["healthcheck"]["test"]
    assert test == ["CMD", "python", "/app/deploy/healthcheck.py", "--ready"]


def test_the_kek_is_a_secret_file_never_a_value() -> None:
    """authd reads its KEK from a compose secret through AUTHD_KEK_FILE; no AUTHD_KEK."""
    document = load()
    assert "file" in document["secrets"]["authd_kek"]
    for name in ("authd", "migrate"):
        service = services()[name]
        assert "authd_kek" in service["secrets"]
        assert service["environment"]["AUTHD_KEK_FILE"] == "/run/secrets/authd_kek"
        assert "AUTHD_KEK" not in service["environment"]


def test_no_password_is_written_into_the_file() -> None:
    """The database password is interpolated from the environment, not committed."""
    env = services()["authd"]["environment"]
    assert "${AUTHD_DB_PASSWORD" in env["AUTHD_DATABASE_URL"]
    assert "${AUTHD_DB_PASSWORD" in services()["postgres"]["environment"]["POSTGRES_PASSWORD"]


def test_authd_containers_are_locked_down() -> None:
    """Read-only root with a tmpfs /tmp, no capabilities, no privilege escalation."""
    for name in ("authd", "migrate"):
        service = services()[name]
        assert service["read_only"] is True
        assert "/tmp" in service["tmpfs"]  # noqa: S108 - the container's tmpfs
        assert service["cap_drop"] == ["ALL"]
        assert "no-new-privileges:true" in service["security_opt"]


def test_authd_uses_the_production_backends() -> None:
    """The replicas talk to the compose PostgreSQL and Redis, never the embedded default."""
    env = services()["authd"]["environment"]
    assert env["AUTHD_DATABASE_URL"].startswith("postgresql://")
    assert env["AUTHD_DATABASE_URL"].split("@", 1)[1].startswith("postgres:5432/")
    assert env["AUTHD_REDIS_URL"].startswith("redis://redis:")


def test_prometheus_scrapes_authd_and_loads_the_alert_rules() -> None:
    """Prometheus mounts the repo's alert rules and a config that scrapes authd."""
    prometheus = services()["prometheus"]
    mounts = " ".join(prometheus["volumes"])
    assert "./prometheus/alerts.yaml:" in mounts
    config = yaml.safe_load((REPO / "deploy" / "prometheus" / "prometheus.yml").read_text())
    assert "/etc/prometheus/alerts.yaml" in config["rule_files"]
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert jobs["authd"]["dns_sd_configs"][0]["names"] == ["authd"]
    assert jobs["authd"]["metrics_path"] == "/metrics"


def test_host_ports_bind_to_loopback_only() -> None:
    """Published ports listen on 127.0.0.1, not on every interface of the host."""
    for name, service in services().items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), name
