"""OpenTelemetry traces: whether they are on, and the switches that wrap the app.

Off by default. The standard ``OTEL_*`` variables turn them on (docs/tracing.md):

- ``OTEL_SDK_DISABLED=true`` or ``OTEL_TRACES_EXPORTER=none``: off, whatever else is set;
- ``OTEL_TRACES_EXPORTER=otlp``: on, exporting over OTLP/HTTP (the SDK's default
  endpoint, ``http://localhost:4318/v1/traces``, unless one is set);
- ``OTEL_TRACES_EXPORTER`` unset and ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` or
  ``OTEL_EXPORTER_OTLP_ENDPOINT`` set: on;
- anything else: off. (The OpenTelemetry specification's default exporter is ``otlp``;
  authd does not export anywhere nobody asked it to.)

This module imports nothing of OpenTelemetry: with tracing off no part of it is
loaded, and ``request_spans`` hands back the application itself, so a request runs
exactly the code it runs without tracing (the pattern of ``service/http/hsts.py``).
The SDK reads the rest of its variables itself (endpoint, headers, sampler, resource,
batching); what is validated here are the values the SDK would only warn about and
then ignore, so that a typo stops start-up naming the variable instead of silently
sampling everything, or nothing.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from starlette.types import ASGIApp

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.trace import Tracer

# The samplers the SDK knows by name (OTEL_TRACES_SAMPLER); those ending in
# ``traceidratio`` take a probability in OTEL_TRACES_SAMPLER_ARG.
SAMPLERS = frozenset({
    "always_on", "always_off", "traceidratio",
    "parentbased_always_on", "parentbased_always_off", "parentbased_traceidratio",
})
EXPORTERS = ("otlp", "none")
PROTOCOL = "http/protobuf"
ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
DEFAULT_SERVICE_NAME = "authd"
# The packages of the ``tracing`` extra (pyproject.toml), found without importing them.
SDK_MODULES = ("opentelemetry.sdk.trace", "opentelemetry.exporter.otlp.proto.http")


@dataclass(frozen=True, slots=True)
class TracingConfig:
    """Tracing is on; ``switch`` is the variable that turned it on (named in errors)."""

    switch: str


def tracing_from_env(env: Mapping[str, str]) -> TracingConfig | None:
    """The tracing decision of ``env`` (None: off); ConfigError names a bad variable."""
    from service.config import ConfigError

    def value(name: str) -> str:
        return env.get(name, "").strip()

    disabled = value("OTEL_SDK_DISABLED").lower()
    if disabled not in ("", "true", "false"):
        raise ConfigError("OTEL_SDK_DISABLED", "expected true or false")
    exporters = [item.strip().lower() for item in value("OTEL_TRACES_EXPORTER").split(",")
                 if item.strip()]
    for exporter in exporters:
        if exporter not in EXPORTERS:
            raise ConfigError("OTEL_TRACES_EXPORTER", "expected otlp or none (authd "
                              "ships the OTLP/HTTP exporter only)")
    if len(exporters) > 1:
        raise ConfigError("OTEL_TRACES_EXPORTER", "expected one exporter, otlp or none")
    for name in ENDPOINT_VARIABLES:
        if value(name):
            _check_endpoint(name, value(name))
    for name in ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"):
        if value(name) not in ("", PROTOCOL):
            raise ConfigError(name, f"expected {PROTOCOL} (authd ships the OTLP/HTTP "
                                    "exporter only)")
    _check_sampler(value("OTEL_TRACES_SAMPLER").lower(), value("OTEL_TRACES_SAMPLER_ARG"))
    _check_resource_attributes(value("OTEL_RESOURCE_ATTRIBUTES"))

    if disabled == "true" or exporters == ["none"]:
        return None
    if exporters == ["otlp"]:
        switch = "OTEL_TRACES_EXPORTER"
    else:
        named = [name for name in ENDPOINT_VARIABLES if value(name)]
        if not named:
            return None
        switch = named[0]
    missing = [module for module in SDK_MODULES if not _installed(module)]
    if missing:
        raise ConfigError(switch, "turns tracing on, but the OpenTelemetry SDK is not "
                                  "installed: install authd with its `tracing` extra")
    return TracingConfig(switch)


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # a parent package is missing
        return False


def _check_endpoint(name: str, url: str) -> None:
    from service.config import ConfigError

    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(name, "expected an http(s) URL such as http://collector:4318")


def _check_sampler(sampler: str, argument: str) -> None:
    from service.config import ConfigError

    if sampler and sampler not in SAMPLERS:
        raise ConfigError("OTEL_TRACES_SAMPLER", "expected one of " + ", ".join(sorted(SAMPLERS)))
    if not argument:
        return
    if not sampler.endswith("traceidratio"):
        raise ConfigError("OTEL_TRACES_SAMPLER_ARG", "only the traceidratio samplers take "
                                                      "an argument")
    try:
        ratio = float(argument)
    except ValueError:
        ratio = -1.0
    if not 0.0 <= ratio <= 1.0:
        raise ConfigError("OTEL_TRACES_SAMPLER_ARG", "expected a probability from 0 to 1")


def _check_resource_attributes(text: str) -> None:
    from service.config import ConfigError

    for item in text.split(","):
        key, equals, _ = item.partition("=")
        if item.strip() and (not equals or not key.strip()):
            raise ConfigError("OTEL_RESOURCE_ATTRIBUTES", "expected key=value pairs "
                                                          "separated by commas")


class Tracing:
    """The tracer provider of one process, made after the process started (each
    ``authd serve --workers N`` worker has its own: the SDK's export thread does not
    survive a fork) and shut down with the application, flushing its spans."""

    def __init__(self, provider: TracerProvider) -> None:
        self.provider = provider
        self.tracer: Tracer = provider.get_tracer("authd")

    @classmethod
    def start(cls, config: TracingConfig | None) -> Tracing | None:
        if config is None:
            return None
        from service.observability.otel import tracer_provider

        return cls(tracer_provider())

    def shutdown(self) -> None:
        """Export what is left and stop the export thread (graceful shutdown)."""
        self.provider.shutdown()


def request_spans(app: ASGIApp, *, tracing: Tracing | None) -> ASGIApp:
    """``app`` with a SERVER span per HTTP request when tracing is on, else ``app``."""
    if tracing is None:
        return app
    from service.observability.request_spans import RequestSpans

    return RequestSpans(app, tracing.tracer)
