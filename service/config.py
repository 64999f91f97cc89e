"""Settings: read once from the environment into one frozen object.

Every ``AUTHD_*`` variable is parsed and validated here and nowhere else, so that a
bad value stops start-up with one line naming the variable instead of surfacing as a
strange failure on the first request that happens to need it.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

from authd_verifier.dpop import check_dpop_algorithms

from service.http.origins import serialize_origin
from service.observability.logging import mask_url_password
from service.observability.tracing import TracingConfig, tracing_from_env

T = TypeVar("T")

_DURATION = re.compile(r"^\s*(\d+)\s*(ms|s|m|h|d)?\s*$")
_DURATION_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}
# The longest any access token may live: the cap on AUTHD_ACCESS_TOKEN_TTL and
# AUTHD_API_KEY_TOKEN_TTL and on a client's own token_ttl. Key retirement waits this
# long, since a client's TTL is not known to the settings.
MAX_TOKEN_TTL = 86400.0
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
_RATE = re.compile(r"^\s*(\d+)\s*/\s*(\d*)\s*(s|m|h|d)\s*$")


class ConfigError(Exception):
    """A setting is missing or malformed; the message names the variable."""

    def __init__(self, variable: str, problem: str) -> None:
        super().__init__(f"{variable}: {problem}")
        self.variable = variable
        self.problem = problem


class Secret:
    """A string that never shows itself in a repr, a log line or a traceback."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__


@dataclass(frozen=True, slots=True)
class Rate:
    """A limit of ``count`` events per ``window`` seconds, written ``100/m``."""

    count: int
    window: float

    def __str__(self) -> str:
        return f"{self.count}/{int(self.window)}s"


def parse_duration(text: str) -> float:
    """``90d``, ``24h``, ``15m``, ``30s``, ``500ms`` or plain seconds."""
    match = _DURATION.match(text)
    if not match:
        raise ValueError("expected a duration such as 30s, 15m, 24h or 90d")
    return int(match.group(1)) * _DURATION_UNITS[match.group(2)]


def parse_rate(text: str) -> Rate:
    """``100/m``, ``10/s``, ``1000/5m`` -> Rate."""
    match = _RATE.match(text)
    if not match:
        raise ValueError("expected a rate such as 100/m, 10/s or 1000/h")
    count = int(match.group(1))
    multiple = int(match.group(2) or 1)
    if count < 1 or multiple < 1:
        raise ValueError("a rate needs a positive count and window")
    return Rate(count, multiple * _DURATION_UNITS[match.group(3)])


def _bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ValueError("expected true or false")


def _int_between(low: int, high: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text.strip())
        except ValueError:
            raise ValueError(f"expected a whole number from {low} to {high}") from None
        if not low <= value <= high:
            raise ValueError(f"expected a whole number from {low} to {high}")
        return value

    return parse


def _duration_between(low: float, high: float) -> Callable[[str], float]:
    def parse(text: str) -> float:
        value = parse_duration(text)
        if not low <= value <= high:
            raise ValueError(f"expected a duration from {low:g}s to {high:g}s")
        return value

    return parse


def _dpop_algorithms(text: str) -> tuple[str, ...]:
    """Asymmetric JWS algorithms for DPoP proofs (RFC 9449 §4.2), space separated."""
    algorithms = tuple(dict.fromkeys(text.split()))
    check_dpop_algorithms(algorithms)
    return algorithms


def _choice(*options: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        value = text.strip().lower()
        if value not in options:
            raise ValueError(f"expected one of {', '.join(options)}")
        return value

    return parse


def _check_ports(text: str) -> None:
    """A port that is not a number fails here, not at the first connection; the
    message never repeats the URL, which may hold a password. PostgreSQL URLs may
    list several ``host:port`` pairs separated by commas."""
    hosts = urlsplit(text).netloc.rpartition("@")[2]
    for host in hosts.split(","):
        try:
            _ = urlsplit("//" + host).port
        except ValueError:
            raise ValueError("the port is not a number from 0 to 65535") from None


def _database_url(text: str) -> str:
    scheme = urlsplit(text).scheme
    if scheme not in {"postgresql", "postgres", "sqlite"}:
        raise ValueError("expected postgresql://... or sqlite:///path")
    if scheme == "sqlite" and not text.startswith("sqlite:///"):
        raise ValueError("expected sqlite:///relative/path or sqlite:////absolute/path")
    if scheme != "sqlite":
        _check_ports(text)
    return text


def _redis_url(text: str) -> str:
    scheme = urlsplit(text).scheme
    if scheme not in {"redis", "rediss", "unix"}:
        raise ValueError("expected redis://host:port/db or rediss://...")
    if scheme != "unix":
        _check_ports(text)
    return text


def _issuer(text: str) -> str:
    parts = urlsplit(text)
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        raise ValueError("expected an absolute http(s) URL such as https://auth.example.com")
    if parts.query or parts.fragment:
        raise ValueError("an issuer has no query or fragment (RFC 8414 §2)")
    return text.rstrip("/")


# Names that can never be public (RFC 6761 §6.2-6.4, RFC 2606): an issuer on one of
# them is a test or a developer's machine, never a production deployment.
_SPECIAL_USE_SUFFIXES = (".localhost", ".test", ".invalid", ".example")


def _local_url(url: str) -> bool:
    """The URL's host is loopback or a special-use name that no client outside
    this machine or test network can reach."""
    host = (urlsplit(url).hostname or "").rstrip(".").lower()
    if host == "localhost" or host.endswith(_SPECIAL_USE_SUFFIXES):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _api_key_prefix(text: str) -> str:
    if not re.fullmatch(r"[a-z][a-z0-9]{1,7}_[a-z0-9]{2,8}", text):
        raise ValueError("expected a prefix like ak_live or ak_test")
    return text


def _networks(text: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    items = [item.strip() for item in text.split(",") if item.strip()]
    return tuple(ipaddress.ip_network(item, strict=False) for item in items)


def _existing_file(text: str) -> Path:
    path = Path(text)
    if not path.is_file():
        raise ValueError(f"no readable file at {text}")
    return path


def _cors_origins(text: str) -> tuple[str, ...]:
    """Comma-separated exact origins. Never ``*``: these origins are answered with
    credentials allowed, and a wildcard would hand every site the user's session."""
    origins: list[str] = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        if item == "*" or "*" in item:
            raise ValueError("'*' is not allowed: list each origin exactly "
                             "(these origins may send the user's credentials)")
        if item.lower() == "null":
            raise ValueError("'null' is not an origin that can be trusted")
        try:
            origin = serialize_origin(item)
        except ValueError as exc:
            raise ValueError(f"{item!r}: {exc}") from None
        if origin not in origins:
            origins.append(origin)
    return tuple(origins)


def _signing_alg(text: str) -> str:
    # The JOSE names, exactly (RFC 7518 §3.1, RFC 8037 §3.1): what tokens carry.
    value = text.strip()
    if value not in {"RS256", "ES256", "EdDSA"}:
        raise ValueError("expected RS256, ES256 or EdDSA")
    return value


def _rsa_bits(text: str) -> int:
    value = int(text)
    if value not in {2048, 3072, 4096}:
        raise ValueError("expected 2048, 3072 or 4096")
    return value


@dataclass(frozen=True, slots=True, repr=False)
class Settings:
    """Everything the service reads from its environment, validated."""

    database_url: str | None = None
    data_dir: Path = Path("data")
    redis_url: str | None = None
    redis_prefix: str = "authd:"
    issuer: str = "http://127.0.0.1:8000"
    default_audience: str = "authd-api"
    kek: Secret | None = None
    kek_file: Path | None = None
    keys_dir: Path = Path("keys")
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    workers: int = 1
    # AUTHD_PER_PROCESS_LIMITS: several workers without Redis, accepted knowingly
    # (see check_workers).
    per_process_limits: bool = False
    access_token_ttl: float = 900.0
    api_key_token_ttl: float = 900.0
    refresh_token_ttl: float = 30 * 86400.0
    refresh_reuse_grace: float = 10.0
    refresh_cookie: bool = False
    key_rotation_interval: float = 30 * 86400.0
    jwks_max_age: float = 300.0
    rsa_key_bits: int = 2048
    # AUTHD_SIGNING_ALG; None when unset (RS256). Recorded as the key set's target by
    # `authd migrate` (and by the first start), never by a serving replica over a
    # recorded one: see docs/signing-algorithms.md.
    signing_alg: str | None = None
    signing_threads: int = 0
    api_key_prefix: str = "ak_live"
    api_key_cache_ttl: float = 5.0
    # Through a PostgreSQL outage, a key verified this recently keeps exchanging (0: off).
    api_key_stale_if_error: float = 900.0
    # Every wait on PostgreSQL and Redis is bounded (DESIGN §2, docs/outages.md).
    database_connect_timeout: float = 2.0
    database_acquire_timeout: float = 2.0
    database_statement_timeout: float = 5.0
    redis_timeout: float = 0.5
    api_key_default_rate: Rate = field(default_factory=lambda: Rate(600, 60.0))
    # Two budgets per caller address, never shared (DESIGN §2): one for password and
    # MFA failures, one for API-key attempts that miss or fail (service/ratelimit.py).
    failed_login_rate: Rate = field(default_factory=lambda: Rate(30, 60.0))
    failed_api_key_rate: Rate = field(default_factory=lambda: Rate(30, 60.0))
    argon2_memory_kib: int = 19456
    argon2_time_cost: int = 2
    argon2_parallelism: int = 1
    password_max_bytes: int = 1024
    login_max_failures: int = 5
    login_lockout: float = 60.0
    max_body_bytes: int = 65536
    # Requests one worker may have in flight before it sheds (service/http/shedding.py;
    # the default is measured: docs/saturation.md).
    max_in_flight: int = 64
    trusted_proxies: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    cors_origins: tuple[str, ...] = ()
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    allow_http_issuer: bool = True
    log_format: str = "console"
    log_level: str = "info"
    anomaly_policy: str = "log"
    # DPoP (RFC 9449): accepted proof algorithms, proof age window, server nonces.
    dpop_algorithms: tuple[str, ...] = ("ES256", "ES384", "EdDSA", "PS256", "RS256")
    dpop_proof_max_age: float = 60.0
    dpop_nonce: bool = False
    # The operator console (issue 18, docs/console.md).
    console_idle_timeout: float = 900.0
    console_absolute_timeout: float = 8 * 3600.0
    admin_listen: tuple[str, int] | None = None
    # OpenTelemetry traces, from the standard OTEL_* variables; None: off (docs/tracing.md).
    tracing: TracingConfig | None = None

    def __repr__(self) -> str:
        """Every field, with the password of a database or Redis URL masked (the
        KEK masks itself as a Secret), so a logged or printed Settings leaks none."""
        shown = {f.name: getattr(self, f.name) for f in fields(self)}
        for name in ("database_url", "redis_url"):
            if shown[name] is not None:
                shown[name] = mask_url_password(shown[name])
        return f"Settings({', '.join(f'{k}={v!r}' for k, v in shown.items())})"

    @property
    def embedded(self) -> bool:
        """No database URL: the single-process SQLite default of ``make run``."""
        return self.database_url is None

    @property
    def effective_database_url(self) -> str:
        if self.database_url is not None:
            return self.database_url
        return f"sqlite:///{self.data_dir / 'authd.sqlite3'}"

    @property
    def browser_origins(self) -> frozenset[str]:
        """The origins whose pages may use the refresh cookie: the issuer's own and
        the CORS allow list (the CSRF rule of ``service.http.csrf``)."""
        return frozenset((serialize_origin(self.issuer, whole_url=True), *self.cors_origins))

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        """Parse ``env``; raise ConfigError naming the first bad variable."""
        values: dict[str, object] = {}

        def read(name: str, attr: str, parse: Callable[[str], T]) -> None:
            raw = env.get(name)
            if raw is None or raw.strip() == "":
                return
            try:
                values[attr] = parse(raw)
            except ValueError as exc:
                raise ConfigError(name, str(exc) or "invalid value") from None

        read("AUTHD_DATABASE_URL", "database_url", _database_url)
        read("AUTHD_DATA_DIR", "data_dir", Path)
        read("AUTHD_REDIS_URL", "redis_url", _redis_url)
        read("AUTHD_REDIS_PREFIX", "redis_prefix", _redis_prefix)
        read("AUTHD_HOST", "host", str.strip)
        read("AUTHD_PORT", "port", _int_between(1, 65535))
        read("AUTHD_WORKERS", "workers", _int_between(1, 64))
        read("AUTHD_PER_PROCESS_LIMITS", "per_process_limits", _bool)
        read("AUTHD_ISSUER", "issuer", _issuer)
        read("AUTHD_DEFAULT_AUDIENCE", "default_audience", _audience)
        read("AUTHD_KEK", "kek", Secret)
        read("AUTHD_KEK_FILE", "kek_file", _existing_file)
        read("AUTHD_KEYS_DIR", "keys_dir", Path)
        read("AUTHD_ACCESS_TOKEN_TTL", "access_token_ttl", _duration_between(30, MAX_TOKEN_TTL))
        read("AUTHD_API_KEY_TOKEN_TTL", "api_key_token_ttl",
             _duration_between(30, MAX_TOKEN_TTL))
        read("AUTHD_REFRESH_TOKEN_TTL", "refresh_token_ttl", _duration_between(60, 365 * 86400))
        read("AUTHD_REFRESH_REUSE_GRACE", "refresh_reuse_grace", _duration_between(0, 60))
        read("AUTHD_REFRESH_COOKIE", "refresh_cookie", _bool)
        read(
            "AUTHD_KEY_ROTATION_INTERVAL",
            "key_rotation_interval",
            _duration_between(60, 365 * 86400),
        )
        read("AUTHD_JWKS_MAX_AGE", "jwks_max_age", _duration_between(0, 86400))
        read("AUTHD_RSA_KEY_BITS", "rsa_key_bits", _rsa_bits)
        read("AUTHD_SIGNING_ALG", "signing_alg", _signing_alg)
        read("AUTHD_SIGNING_THREADS", "signing_threads", _int_between(0, 32))
        read("AUTHD_API_KEY_PREFIX", "api_key_prefix", _api_key_prefix)
        read("AUTHD_API_KEY_CACHE_TTL", "api_key_cache_ttl", _duration_between(0, 300))
        read("AUTHD_API_KEY_STALE_IF_ERROR", "api_key_stale_if_error",
             _duration_between(0, 86400))
        read("AUTHD_DATABASE_CONNECT_TIMEOUT", "database_connect_timeout",
             _duration_between(0.1, 60))
        read("AUTHD_DATABASE_ACQUIRE_TIMEOUT", "database_acquire_timeout",
             _duration_between(0.1, 60))
        read("AUTHD_DATABASE_STATEMENT_TIMEOUT", "database_statement_timeout",
             _duration_between(0.1, 600))
        read("AUTHD_REDIS_TIMEOUT", "redis_timeout", _duration_between(0.05, 10))
        read("AUTHD_API_KEY_DEFAULT_RATE", "api_key_default_rate", parse_rate)
        if env.get("AUTHD_FAILED_AUTH_RATE", "").strip():
            raise ConfigError(
                "AUTHD_FAILED_AUTH_RATE", "the one shared budget was split: set "
                "AUTHD_FAILED_LOGIN_RATE (passwords, MFA) and AUTHD_FAILED_API_KEY_RATE"
            )
        read("AUTHD_FAILED_LOGIN_RATE", "failed_login_rate", parse_rate)
        read("AUTHD_FAILED_API_KEY_RATE", "failed_api_key_rate", parse_rate)
        read("AUTHD_ARGON2_MEMORY_KIB", "argon2_memory_kib", _int_between(8192, 4 * 1024 * 1024))
        read("AUTHD_ARGON2_TIME_COST", "argon2_time_cost", _int_between(1, 32))
        read("AUTHD_ARGON2_PARALLELISM", "argon2_parallelism", _int_between(1, 16))
        read("AUTHD_PASSWORD_MAX_BYTES", "password_max_bytes", _int_between(64, 4096))
        read("AUTHD_LOGIN_MAX_FAILURES", "login_max_failures", _int_between(1, 1000))
        read("AUTHD_LOGIN_LOCKOUT", "login_lockout", _duration_between(1, 86400))
        read("AUTHD_MAX_BODY_BYTES", "max_body_bytes", _int_between(1024, 16 * 1024 * 1024))
        read("AUTHD_MAX_IN_FLIGHT", "max_in_flight", _int_between(1, 100_000))
        read("AUTHD_TRUSTED_PROXIES", "trusted_proxies", _networks)
        read("AUTHD_CORS_ORIGINS", "cors_origins", _cors_origins)
        read("AUTHD_TLS_CERT_FILE", "tls_cert_file", _existing_file)
        read("AUTHD_TLS_KEY_FILE", "tls_key_file", _existing_file)
        read("AUTHD_ALLOW_HTTP_ISSUER", "allow_http_issuer", _bool)
        read("AUTHD_LOG_FORMAT", "log_format", _choice("json", "console"))
        read("AUTHD_LOG_LEVEL", "log_level", _choice("debug", "info", "warning", "error"))
        read("AUTHD_ANOMALY_POLICY", "anomaly_policy", _choice("log", "step_up", "deny"))
        read("AUTHD_DPOP_ALGS", "dpop_algorithms", _dpop_algorithms)
        read("AUTHD_DPOP_PROOF_MAX_AGE", "dpop_proof_max_age", _duration_between(5, 300))
        read("AUTHD_DPOP_NONCE", "dpop_nonce", _bool)
        read("AUTHD_CONSOLE_IDLE_TIMEOUT", "console_idle_timeout", _duration_between(10, 86400))
        read("AUTHD_CONSOLE_ABSOLUTE_TIMEOUT", "console_absolute_timeout",
             _duration_between(60, 7 * 86400))
        read("AUTHD_ADMIN_LISTEN", "admin_listen", parse_host_port)
        values["tracing"] = tracing_from_env(env)

        if "issuer" not in values:
            scheme = "https" if "tls_cert_file" in values else "http"
            host = values.get("host", DEFAULT_HOST)
            port = values.get("port", DEFAULT_PORT)
            values["issuer"] = f"{scheme}://{host}:{port}"
        if "allow_http_issuer" not in values:
            # Unset: a plain-http issuer is accepted in the embedded default and on
            # a local name (loopback, .test, ...); a configured database with a
            # routable http:// issuer is production, and is refused (docs/operations.md).
            values["allow_http_issuer"] = (
                "database_url" not in values or _local_url(str(values["issuer"]))
            )
        settings = cls(**values)  # type: ignore[arg-type]
        settings._check_combinations()
        return settings

    def check_workers(self, workers: int) -> None:
        """Refuse to serve with several worker processes and no Redis.

        Failed-attempt budgets and rate limits live in Redis when it is configured,
        else in each process's memory: N workers would then grant every address N
        times its password- and API-key-guessing budget, and every key N times its
        rate limit, with nothing to show it. Checked by ``authd serve`` (and ``config
        check``) only, so that the CLI's other commands keep working in the same
        environment. ``AUTHD_PER_PROCESS_LIMITS=true`` accepts the multiplication
        (a benchmark, a test of something else); serving then warns at start-up."""
        if workers > 1 and self.redis_url is None and not self.per_process_limits:
            raise ConfigError(
                "AUTHD_REDIS_URL",
                f"{workers} workers (--workers / AUTHD_WORKERS) without Redis would each keep "
                f"their own failed-attempt budgets and rate limits, {workers} times each "
                "budget: set AUTHD_REDIS_URL, serve one worker, or set "
                "AUTHD_PER_PROCESS_LIMITS=true to accept per-process limits",
            )

    def _check_combinations(self) -> None:
        if self.kek is not None and self.kek_file is not None:
            raise ConfigError("AUTHD_KEK_FILE", "set AUTHD_KEK or AUTHD_KEK_FILE, not both")
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            missing = "AUTHD_TLS_KEY_FILE" if self.tls_key_file is None else "AUTHD_TLS_CERT_FILE"
            raise ConfigError(missing, "TLS needs both a certificate and a key file")
        if self.issuer.startswith("http://") and not self.allow_http_issuer:
            raise ConfigError(
                "AUTHD_ISSUER", "an http:// issuer is refused here: use https://, or set "
                "AUTHD_ALLOW_HTTP_ISSUER=true for a deployment that is not reachable from outside"
            )
        plain = [o for o in self.cors_origins if o.startswith("http://") and not _local_url(o)]
        if plain and not self.allow_http_issuer:
            raise ConfigError(
                "AUTHD_CORS_ORIGINS", f"{plain[0]} is plain http: a page served without TLS "
                "can be altered in transit to use the session; use https://, or set "
                "AUTHD_ALLOW_HTTP_ISSUER=true for a deployment that is not reachable from outside"
            )
        if not self.embedded and self.kek is None and self.kek_file is None:
            raise ConfigError(
                "AUTHD_KEK", "a database is configured, so a KEK must be given "
                "(AUTHD_KEK or AUTHD_KEK_FILE); only the embedded default generates one"
            )
        if self.console_idle_timeout > self.console_absolute_timeout:
            raise ConfigError("AUTHD_CONSOLE_IDLE_TIMEOUT",
                              "must not be longer than AUTHD_CONSOLE_ABSOLUTE_TIMEOUT")
        if self.admin_listen is not None and self.admin_listen[1] == self.port:
            raise ConfigError("AUTHD_ADMIN_LISTEN", "must use another port than the public one")
        if self.refresh_reuse_grace >= self.access_token_ttl:
            raise ConfigError("AUTHD_REFRESH_REUSE_GRACE", "must be shorter than the access TTL")


def parse_host_port(text: str) -> tuple[str, int]:
    """``host:port`` (``[::1]:9000`` for IPv6) of a listener of its own."""
    host, sep, port = text.strip().rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not sep or not host or not port.isascii() or not port.isdigit():
        raise ValueError("expected host:port, such as 127.0.0.1:9000")
    number = int(port)
    if not 1 <= number <= 65535:
        raise ValueError("the port must be from 1 to 65535")
    return host, number


def _redis_prefix(text: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9_.:-]{1,64}", text):
        raise ValueError("expected 1-64 characters from A-Z a-z 0-9 _ . : -")
    return text


def _audience(text: str) -> str:
    value = text.strip()
    if not value or " " in value:
        raise ValueError("expected one audience without spaces")
    return value
