"""The sample names authd can expose, read from the metric definitions themselves,
so the dashboard and the alert rules are checked against the code, not a copy."""

from __future__ import annotations

import re

from prometheus_client.metrics import MetricWrapperBase

from service.observability import metrics

_SUFFIXES = {
    "counter": ("_total",),
    "gauge": ("",),
    "histogram": ("_bucket", "_sum", "_count"),
    "summary": ("", "_sum", "_count"),
}
METRIC_TOKEN = re.compile(r"\bauthd_[a-z0-9_]+")


def exposed_names() -> set[str]:
    """Every ``authd_*`` sample name defined in service/observability/metrics.py."""
    names: set[str] = set()
    for value in vars(metrics).values():
        if isinstance(value, MetricWrapperBase):
            for family in value.describe():
                names.update(family.name + suffix for suffix in _SUFFIXES[family.type])
    return names


def referenced_names(text: str) -> set[str]:
    """Every ``authd_*`` token in a rule file or a PromQL expression."""
    return set(METRIC_TOKEN.findall(text))
