"""The Grafana dashboard loads, shows what an operator needs, and queries only
metrics that authd exposes with PromQL that Prometheus accepts."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.deploy.metric_names import exposed_names, referenced_names
from tests.support.servers import REPO

DASHBOARD = REPO / "deploy" / "grafana" / "authd.json"

# What the issue asks the dashboard to show, by the metric that shows it.
REQUIRED = {
    "authd_tokens_issued_total",  # tokens/s by grant
    "authd_token_requests_failed_total",  # errors
    "authd_http_request_duration_seconds_bucket",  # latency
    "authd_signing_keys",  # key states
    "authd_signing_key_active_age_seconds",  # key age
    "authd_revocations_total",
    "authd_refresh_reuse_detected_total",
    "authd_rate_limited_total",
}
# Grafana's built-in variables, replaced by typical values so promtool can parse.
GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$__range": "6h", "$instance": ".*"}


def load() -> dict[str, Any]:
    return dict(json.loads(DASHBOARD.read_text()))


def panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for panel in dashboard["panels"]:
        found.append(panel)
        found.extend(panel.get("panels", []))
    return found


def expressions(dashboard: dict[str, Any]) -> list[str]:
    return [target["expr"] for panel in panels(dashboard) for target in panel.get("targets", [])]


def test_dashboard_is_a_grafana_dashboard() -> None:
    """The file parses as JSON with a stable uid, a title and unique panel ids."""
    dashboard = load()
    assert dashboard["uid"] == "authd-overview"
    assert dashboard["title"]
    ids = [panel["id"] for panel in panels(dashboard)]
    assert len(ids) == len(set(ids))


def test_every_query_uses_the_datasource_variable() -> None:
    """No panel is bound to one Grafana's data source uid, so the file imports anywhere."""
    for panel in panels(load()):
        for target in panel.get("targets", []):
            assert target["datasource"]["uid"] == "${datasource}", panel["title"]


def test_queries_reference_only_defined_metrics() -> None:
    """Every authd_* name in a panel query is a sample the service exposes."""
    used = set().union(*(referenced_names(expr) for expr in expressions(load())))
    assert used - exposed_names() == set()


def test_dashboard_shows_what_the_operator_needs() -> None:
    """Tokens by grant, errors, latency, key states and age, revocations, reuse, rate limits."""
    used = set().union(*(referenced_names(expr) for expr in expressions(load())))
    assert REQUIRED - used == set()


def test_queries_are_valid_promql(tmp_path: Path) -> None:
    """`promtool check rules` parses every panel query (as recording rules)."""
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail("promtool is not installed: run `bash tests/services.sh` (make test does)")
    rules = []
    for number, expr in enumerate(expressions(load())):
        for variable, value in GRAFANA_VARIABLES.items():
            expr = expr.replace(variable, value)
        rules.append({"record": f"authd:dashboard_query_{number}", "expr": expr})
    rule_file = tmp_path / "dashboard_rules.yaml"  # JSON is YAML
    rule_file.write_text(json.dumps({"groups": [{"name": "dashboard", "rules": rules}]}))
    result = subprocess.run([promtool, "check", "rules", str(rule_file)],
                            capture_output=True, timeout=60, check=False)
    assert result.returncode == 0, result.stdout.decode() + result.stderr.decode()


def test_redis_fallback_panel_plots_only_redis_fallbacks() -> None:
    """Audit write failures are a PostgreSQL problem: they get their own panel, not a
    line in "Redis fallbacks" where they would read as a Redis outage."""
    by_title = {panel["title"]: panel for panel in panels(load())}
    fallback = set().union(*(referenced_names(target["expr"])
                             for target in by_title["Redis fallbacks per second"]["targets"]))
    assert fallback == {"authd_denylist_fallback_total", "authd_rate_limit_fallback_total"}
    audit = [panel for panel in panels(load()) if any(
        "authd_audit_write_failures_total" in referenced_names(target["expr"])
        for target in panel.get("targets", []))]
    assert [panel["title"] for panel in audit] == ["Audit write failures"]
