"""The alert rules are valid, behave as their unit tests say, and authd's live
/metrics passes Prometheus's own lint (promtool, from Debian's prometheus package)."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.deploy.metric_names import exposed_names, referenced_names
from tests.support.servers import REPO, Server

PROMETHEUS = REPO / "deploy" / "prometheus"


@pytest.fixture(scope="module")
def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.fail("promtool is not installed: run `bash tests/services.sh` (make test does)")
    return path


def run_promtool(promtool: str, *args: str, stdin: bytes | None = None,
                 cwd: Path = REPO) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([promtool, *args], input=stdin, capture_output=True, cwd=cwd,
                          timeout=120, check=False)


def test_alert_rules_pass_promtool_check(promtool: str) -> None:
    """`promtool check rules` accepts deploy/prometheus/alerts.yaml."""
    result = run_promtool(promtool, "check", "rules", str(PROMETHEUS / "alerts.yaml"))
    assert result.returncode == 0, result.stdout.decode() + result.stderr.decode()


def test_alert_rule_unit_tests_pass(promtool: str) -> None:
    """`promtool test rules` runs alerts_test.yaml and every scenario holds."""
    result = run_promtool(promtool, "test", "rules", "alerts_test.yaml", cwd=PROMETHEUS)
    assert result.returncode == 0, result.stdout.decode() + result.stderr.decode()


def test_every_alert_has_a_unit_test() -> None:
    """Each alert defined in alerts.yaml is the subject of at least one rule unit test."""
    rules = (PROMETHEUS / "alerts.yaml").read_text()
    tests = (PROMETHEUS / "alerts_test.yaml").read_text()
    alerts = {line.split(":", 1)[1].strip() for line in rules.splitlines()
              if line.strip().startswith("- alert:")}
    tested = {line.split(":", 1)[1].strip() for line in tests.splitlines()
              if line.strip().startswith("alertname:")}
    assert alerts, "no alert found in alerts.yaml"
    assert alerts - tested == set()


def test_alert_rules_reference_only_defined_metrics() -> None:
    """Every authd_* name in the rules is a sample the service actually exposes."""
    used = referenced_names((PROMETHEUS / "alerts.yaml").read_text())
    assert used, "the rules reference no authd metric"
    assert used - exposed_names() == set()


@pytest.mark.e2e
def test_live_metrics_pass_promtool_check_metrics(
    promtool: str, server_env: dict[str, str], start_server: Callable[..., Server]
) -> None:
    """The exposition of a running two-worker server passes `promtool check metrics`."""
    server = start_server(server_env, workers=2)
    with httpx.Client(base_url=server.base_url, timeout=10) as client:
        for path in ("/healthz", "/readyz", "/no-such-route", "/.well-known/jwks.json"):
            client.get(path)
        client.post("/oauth/token", data={"grant_type": "client_credentials"})
        exposition = client.get("/metrics")
    assert exposition.status_code == 200
    assert b"authd_http_requests_total" in exposition.content
    result = run_promtool(promtool, "check", "metrics", stdin=exposition.content)
    assert result.returncode == 0, result.stdout.decode() + result.stderr.decode()


def test_compose_prometheus_config_passes_promtool_check(promtool: str, tmp_path: Path) -> None:
    """`promtool check config` accepts deploy/prometheus/prometheus.yml with its rules."""
    config = (PROMETHEUS / "prometheus.yml").read_text()
    config = config.replace("/etc/prometheus/alerts.yaml", str(PROMETHEUS / "alerts.yaml"))
    (tmp_path / "prometheus.yml").write_text(config)
    result = run_promtool(promtool, "check", "config", str(tmp_path / "prometheus.yml"))
    assert result.returncode == 0, result.stdout.decode() + result.stderr.decode()


def test_every_alert_has_a_runbook_section() -> None:
    """Each alert's runbook_url points at a heading of docs/operations.md that exists."""
    rules = (PROMETHEUS / "alerts.yaml").read_text()
    headings = {line.lstrip("#").strip().lower() for line in
                (REPO / "docs" / "operations.md").read_text().splitlines()
                if line.startswith("### ")}
    anchors = [line.split("#", 1)[1].strip() for line in rules.splitlines()
               if line.strip().startswith("runbook_url: docs/operations.md#")]
    alerts = [line.split(":", 1)[1].strip() for line in rules.splitlines()
              if line.strip().startswith("- alert:")]
    assert sorted(anchors) == sorted(alert.lower() for alert in alerts)
    assert set(anchors) <= headings
