"""What turns tracing on and off, and a bad OTEL_* value refused naming the variable."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from redis.asyncio import Redis
from starlette.applications import Starlette
from starlette.types import ASGIApp

from service.app import create_app
from service.config import ConfigError, Settings
from service.observability.request_spans import RequestSpans
from service.observability.traced import TracedDatabase, TracedTokenIssuer
from service.observability.tracing import TracingConfig, request_spans, tracing_from_env
from service.runtime import open_runtime
from tests.support.databases import REDIS_URL
from tests.support.servers import REPO, base_env, free_port, run_cli

ENDPOINT = "http://127.0.0.1:4318"


@pytest.mark.parametrize(("env", "switch"), [
    ({}, None),
    ({"OTEL_SERVICE_NAME": "authd-eu", "OTEL_TRACES_SAMPLER": "always_on"}, None),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": ENDPOINT}, "OTEL_EXPORTER_OTLP_ENDPOINT"),
    ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": ENDPOINT + "/v1/traces"},
     "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"),
    ({"OTEL_TRACES_EXPORTER": "otlp"}, "OTEL_TRACES_EXPORTER"),
    ({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": ENDPOINT}, None),
    ({"OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "otlp"}, None),
    ({"OTEL_SDK_DISABLED": "false", "OTEL_EXPORTER_OTLP_ENDPOINT": ENDPOINT},
     "OTEL_EXPORTER_OTLP_ENDPOINT"),
])
def test_the_variables_that_turn_tracing_on(env: dict[str, str], switch: str | None) -> None:
    """Off unless an exporter or an OTLP endpoint is set; `none` and OTEL_SDK_DISABLED win."""
    expected = None if switch is None else TracingConfig(switch)
    assert tracing_from_env(env) == expected
    assert Settings.from_env(env).tracing == expected


@pytest.mark.parametrize(("variable", "value"), [
    ("OTEL_TRACES_EXPORTER", "jaeger"),
    ("OTEL_TRACES_EXPORTER", "otlp,console"),
    ("OTEL_SDK_DISABLED", "yes"),
    ("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4318"),
    ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "ftp://collector"),
    ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
    ("OTEL_TRACES_SAMPLER", "always_maybe"),
    ("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment"),
])
def test_a_bad_value_names_its_variable(variable: str, value: str) -> None:
    """Values the SDK would warn about and ignore stop start-up instead."""
    with pytest.raises(ConfigError) as raised:
        Settings.from_env({"OTEL_TRACES_EXPORTER": "otlp", variable: value}
                          if variable != "OTEL_TRACES_EXPORTER" else {variable: value})
    assert raised.value.variable == variable


@pytest.mark.parametrize(("sampler", "argument"), [
    ("parentbased_traceidratio", "2"), ("traceidratio", "half"), ("always_on", "0.5"),
])
def test_a_bad_sampler_argument_is_refused(sampler: str, argument: str) -> None:
    """OTEL_TRACES_SAMPLER_ARG is a probability, and only for the ratio samplers."""
    with pytest.raises(ConfigError) as raised:
        tracing_from_env({"OTEL_TRACES_SAMPLER": sampler, "OTEL_TRACES_SAMPLER_ARG": argument})
    assert raised.value.variable == "OTEL_TRACES_SAMPLER_ARG"


def test_a_ratio_sampler_with_its_argument_is_accepted() -> None:
    """The SDK's own sampler names and argument pass as they are."""
    assert tracing_from_env({"OTEL_TRACES_EXPORTER": "otlp",
                             "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
                             "OTEL_TRACES_SAMPLER_ARG": "0.25"}) is not None


def test_off_leaves_the_app_unwrapped() -> None:
    """With tracing off the factory returns the very app: no per-request cost."""
    inner = Starlette()
    assert request_spans(inner, tracing=None) is inner


def _chain(app: ASGIApp) -> list[object]:
    layers: list[object] = []
    current: object = app
    while current is not None:
        layers.append(current)
        current = getattr(current, "app", None)
    return layers


def test_the_default_app_has_no_tracing_layer(tmp_path: Path) -> None:
    """The whole middleware stack built from an environment without OTEL_* holds no
    span layer; with an endpoint set it does, outermost."""
    plain = create_app(Settings(data_dir=tmp_path))
    assert not any(isinstance(layer, RequestSpans) for layer in _chain(plain))
    traced = create_app(Settings(data_dir=tmp_path,
                                 tracing=TracingConfig("OTEL_EXPORTER_OTLP_ENDPOINT")))
    assert isinstance(traced, RequestSpans)


def test_off_loads_no_tracing_code(tmp_path: Path) -> None:
    """An app made without OTEL_* loads neither the SDK's tracing and exporter nor
    authd's span wrappers. (redis-py 8 imports parts of OpenTelemetry on its own, for
    metrics it leaves off unless configured: those are not checked here.)"""
    probe = ("import sys; from service.app import create_app_from_env; create_app_from_env(); "
             "print(sorted(m for m in sys.modules if m.startswith(("
             "'opentelemetry.sdk.trace', 'opentelemetry.exporter', "
             "'service.observability.otel', 'service.observability.traced', "
             "'service.observability.request_spans'))))")
    result = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True,
                            text=True, timeout=60, check=True,
                            env=base_env({"AUTHD_DATA_DIR": str(tmp_path)}))
    assert result.stdout.strip() == "[]"


def test_serve_with_a_bad_otel_value_exits_naming_it(tmp_path: Path) -> None:
    """`authd serve` refuses a bad OTEL_* value with one line naming it, no traceback."""
    result = subprocess.run(
        [sys.executable, "-m", "service", "serve", "--port", str(free_port())],
        env=base_env({"AUTHD_DATA_DIR": str(tmp_path / "data"),
                      "AUTHD_KEYS_DIR": str(tmp_path / "keys"),
                      "OTEL_EXPORTER_OTLP_ENDPOINT": ENDPOINT,
                      "OTEL_TRACES_SAMPLER": "always_maybe"}),
        capture_output=True, text=True, cwd=REPO, timeout=60, check=False,
    )
    assert result.returncode != 0
    [line] = result.stderr.strip().splitlines()
    assert "OTEL_TRACES_SAMPLER" in line
    assert "Traceback" not in result.stderr


def test_tracing_on_without_the_sdk_names_the_switch(tmp_path: Path) -> None:
    """Without the `tracing` extra installed, the variable that asked for tracing is
    named, with what to install."""
    probe = (
        "import sys, importlib.abc\n"
        "class NoSdk(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path, target=None):\n"
        "        if name.startswith('opentelemetry.sdk'): raise ModuleNotFoundError(name)\n"
        "sys.meta_path.insert(0, NoSdk())\n"
        "from service.cli import main\n"
        f"sys.exit(main(['serve', '--port', '{free_port()}']))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, timeout=60,
        env=base_env({"AUTHD_DATA_DIR": str(tmp_path), "OTEL_TRACES_EXPORTER": "otlp"}),
        check=False,
    )
    assert result.returncode != 0
    [line] = result.stderr.strip().splitlines()
    assert "OTEL_TRACES_EXPORTER" in line and "`tracing` extra" in line
    assert "Traceback" not in result.stderr


def test_config_check_says_whether_tracing_is_on(tmp_path: Path) -> None:
    """`authd config check` reports tracing off by default, and on with the variable
    that turned it on."""
    env = {"AUTHD_DATA_DIR": str(tmp_path / "data"), "AUTHD_KEYS_DIR": str(tmp_path / "keys")}
    off = run_cli(["--json", "config", "check"], env)
    assert json.loads(off.stdout)["tracing"] == "off"
    on = run_cli(["--json", "config", "check"], {**env, "OTEL_EXPORTER_OTLP_ENDPOINT": ENDPOINT})
    assert json.loads(on.stdout)["tracing"] == "on (OTEL_EXPORTER_OTLP_ENDPOINT)"


@pytest.mark.parametrize("traced", [False, True])
async def test_runtime_wraps_storage_redis_and_issuer_only_when_traced(
    tmp_path: Path, traced: bool
) -> None:
    """Without a tracer the runtime holds the plain database, Redis client and issuer;
    with one, their traced wrappers."""
    from opentelemetry.sdk.trace import TracerProvider

    provider = TracerProvider()
    settings = Settings(data_dir=tmp_path / "data", keys_dir=tmp_path / "keys",
                        redis_url=REDIS_URL)
    async with open_runtime(settings, tracer=provider.get_tracer("test") if traced
                            else None) as runtime:
        assert isinstance(runtime.db, TracedDatabase) is traced
        assert (type(runtime.issuer) is TracedTokenIssuer) is traced
        assert runtime.redis is not None
        assert ("execute_command" in vars(runtime.redis)) is traced
        assert (type(runtime.redis).execute_command is Redis.execute_command)
    provider.shutdown()
