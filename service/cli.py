"""``authd`` — the operator's command line (DESIGN §3a).

Every command takes ``--json`` and then prints exactly one JSON object on stdout, on
failure too (``{"error": CODE, "message": TEXT}`` with a non-zero exit); without it,
an error is one line on stderr. Never a traceback: ``failure`` below is the CLI's one
table from exception to error code, message and exit status, as
``service.http.errors`` is the server's. Domain commands live next to their domain
(``service/<domain>/cli.py``) and are registered here.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

import shtab

from service.config import ConfigError, Settings
from service.errors import AuthdError, StorageConflict
from service.observability.logging import configure
from service.store import IntegrityViolation, SchemaOutdated, StorageUnavailable, open_database
from service.store.migrate import migrate

Command = Callable[[Any, argparse.Namespace], Awaitable[dict[str, Any]]]

EXIT_FAILURE = 1
EXIT_CONFIG = 2
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class CommandError(Exception):
    """A command could not do what was asked; the message is for the operator."""


class UsageError(Exception):
    """The command line itself is wrong (unknown command, missing or bad argument)."""


class Parser(argparse.ArgumentParser):
    """argparse, except that a usage error is raised and answered like every other
    failure (one line, or one JSON object under ``--json``) instead of being printed
    as usage text. Subcommand parsers are made of the same class."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see '{self.prog} --help')")


def build_parser() -> argparse.ArgumentParser:
    from service.wiring import register_cli

    parser: argparse.ArgumentParser = Parser(prog="authd", description="authd token service")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = sub.add_parser("serve", help="run the HTTP service")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--workers", type=int)
    serve.set_defaults(local=_serve)

    sub.add_parser("migrate", help="apply database migrations").set_defaults(local=_migrate)

    config = sub.add_parser("config", help="configuration")
    config_sub = config.add_subparsers(dest="config_command", required=True, metavar="ACTION")
    config_sub.add_parser("check", help="validate the environment").set_defaults(
        local=_config_check
    )
    register_cli(sub)
    completion = sub.add_parser("completion", help="print a shell completion script")
    completion.add_argument("shell", choices=shtab.SUPPORTED_SHELLS)
    completion.set_defaults(local=lambda settings, args: _completion(parser, args.shell))
    for action in _leaves(parser):
        action.add_argument("--json", action="store_true", default=argparse.SUPPRESS,
                            help="print one JSON object")
    return parser


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("authd")
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown"


def _completion(parser: argparse.ArgumentParser, shell: str) -> dict[str, Any]:
    """The completion script for ``shell``, generated from this very parser (shtab), so
    it always knows the commands and options of the installed version::

        source <(authd completion bash)                # or in ~/.bashrc
        authd completion zsh > "${fpath[1]}/_authd"    # zsh, then compinit
    """
    script = shtab.complete(parser, shell=shell)
    return {"shell": shell, "script": script, "message": script.rstrip("\n")}


def _leaves(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    found: list[argparse.ArgumentParser] = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                nested = _leaves(child)
                found.extend(nested or [child])
    return found


def emit(result: dict[str, Any], as_json: bool) -> None:
    if as_json:
        result = {k: v for k, v in result.items() if k != "message"}
        print(json.dumps(result, default=str, separators=(",", ":")))
        return
    if "message" in result:
        if result["message"]:
            print(result["message"])
        return
    for key, value in result.items():
        if isinstance(value, list):
            print(f"{key}:")
            for item in value:
                text = json.dumps(item, default=str) if isinstance(item, dict) else str(item)
                print("  " + text)
        else:
            print(f"{key}: {value}")


def failure(exc: BaseException) -> tuple[str, str, int]:
    """The error code, the one-line message and the exit status of a failed command.

    The codes are the server's where one exists (``conflict``, ``not_found``, …, from
    the typed error), so a script reads one vocabulary from both interfaces.
    """
    if isinstance(exc, IntegrityViolation):
        exc = StorageConflict(log_detail=str(exc))
    if isinstance(exc, UsageError):
        return "usage_error", str(exc), EXIT_USAGE
    if isinstance(exc, ConfigError):
        return "configuration_error", f"configuration error: {exc}", EXIT_CONFIG
    if isinstance(exc, AuthdError):
        return exc.code, exc.description, EXIT_FAILURE
    if isinstance(exc, CommandError):
        return "command_failed", str(exc), EXIT_FAILURE
    if isinstance(exc, SchemaOutdated):
        return "schema_outdated", str(exc), EXIT_FAILURE
    if isinstance(exc, StorageUnavailable):
        return "storage_unavailable", f"storage unavailable: {exc}", EXIT_FAILURE
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted", "interrupted", EXIT_INTERRUPTED
    # A bug. Its text may hold anything (a driver's message quotes row values), so
    # only its type is named; never a traceback on an operator's terminal or in a
    # script's output.
    return "internal_error", f"internal error ({type(exc).__name__}); please report it", (
        EXIT_FAILURE)


def fail(exc: BaseException, as_json: bool) -> int:
    """Print the failure in the shape asked for; return the exit status."""
    code, message, status = failure(exc)
    message = " ".join(message.split())  # one line, whatever the message held
    if as_json:
        print(json.dumps({"error": code, "message": message}, separators=(",", ":")))
    else:
        print(f"authd: {message}", file=sys.stderr)
    return status


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # Decided before parsing: a usage error must answer in the shape asked for too.
    as_json = "--json" in argv
    try:
        _check_text(argv)
        args = build_parser().parse_args(argv)
        settings = Settings.from_env(os.environ)
        configure(settings.log_format,
                  "warning" if args.command != "serve" else settings.log_level)
        if hasattr(args, "local"):
            result = args.local(settings, args)
        else:
            result = asyncio.run(_with_runtime(settings, args.handler, args))
    except (Exception, KeyboardInterrupt) as exc:
        return fail(exc, as_json)
    try:
        if result is not None:
            emit(result, as_json)
        sys.stdout.flush()
    except BrokenPipeError:
        # The reader went away (``authd … | head``): there is no one to tell, and
        # the interpreter's own flush at exit would fail again, so stdout goes to
        # /dev/null (the recipe of the Python docs, "Note on SIGPIPE").
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_FAILURE
    return 0


def _check_text(argv: Sequence[str]) -> None:
    """Python hands over undecodable argument bytes as lone surrogates, which no
    store, log or JSON answer can carry: refuse them here, naming the position."""
    for position, arg in enumerate(argv, start=1):
        try:
            arg.encode("utf-8")
        except UnicodeEncodeError:
            raise UsageError(f"argument {position} is not valid UTF-8 text") from None


async def _with_runtime(settings: Settings, handler: Command, args: argparse.Namespace) -> Any:
    from service.runtime import open_runtime

    async with open_runtime(settings) as runtime:
        return await handler(runtime, args)


def _config_check(settings: Settings, args: argparse.Namespace) -> dict[str, Any]:
    from service.signing.kek import load_kek

    if not settings.embedded or settings.kek is not None or settings.kek_file is not None:
        load_kek(settings)
    settings.check_workers(settings.workers)
    return {
        "status": "ok",
        "database": "postgresql" if settings.database_url and
        not settings.database_url.startswith("sqlite") else "sqlite",
        "redis": "configured" if settings.redis_url else "in-process",
        "issuer": settings.issuer,
        "tracing": "off" if settings.tracing is None else f"on ({settings.tracing.switch})",
    }


def _migrate(settings: Settings, args: argparse.Namespace) -> dict[str, Any]:
    from service.signing.target import record_setting

    async def run() -> tuple[list[str], str | None]:
        db = await open_database(settings.effective_database_url)
        try:
            applied = await migrate(db)
            return applied, await record_setting(db, settings.signing_alg)
        finally:
            await db.close()

    applied, signing_alg = asyncio.run(run())
    answer: dict[str, Any] = {"status": "ok", "applied": applied}
    if signing_alg is not None:
        # The key set's target algorithm changed: new keys are made in it from now on
        # (docs/signing-algorithms.md).
        answer["signing_alg"] = signing_alg
    return answer


# TLS 1.2 suites of Mozilla's "intermediate" profile: forward secrecy and AEAD only
# (uvicorn's default, "TLSv1", also admits CBC and SHA-1 suites). TLS 1.3 suites are
# not governed by this string; Python's server context already refuses TLS < 1.2.
TLS12_CIPHERS = ":".join((
    "ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256",
    "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-RSA-AES256-GCM-SHA384",
    "ECDHE-ECDSA-CHACHA20-POLY1305", "ECDHE-RSA-CHACHA20-POLY1305",
    "DHE-RSA-AES128-GCM-SHA256", "DHE-RSA-AES256-GCM-SHA384",
))


def _serve(settings: Settings, args: argparse.Namespace) -> None:
    import structlog
    import uvicorn

    from service.http.fair_order import FairHttpToolsProtocol
    from service.signing.kek import load_kek
    from service.workers import (
        balanced_listeners_supported,
        check_port_free,
        run_balanced,
        run_bound,
    )

    host = args.host or settings.host
    port = args.port or settings.port
    workers = args.workers or settings.workers
    settings.check_workers(workers)
    load_kek(settings)  # fail before forking when the KEK is unusable
    balanced = workers > 1 and balanced_listeners_supported()
    # Every mode binds its listener itself (service/workers.py): a taken port is named
    # here in one line, before anything starts.
    try:
        check_port_free(host, port)
    except OSError as exc:
        raise CommandError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    if workers > 1 and settings.redis_url is None:
        structlog.get_logger("authd.workers").warning(
            "workers.per_process_limits", workers=workers,
            detail=f"AUTHD_PER_PROCESS_LIMITS=true without AUTHD_REDIS_URL: every "
            f"failed-attempt budget and rate limit is granted {workers} times, once per "
            "worker")
    # The app (in this process or a spawned worker) reads its settings from the
    # environment again: flags must land there, or the default issuer (built from
    # host and port) would name AUTHD_PORT's port rather than the one served.
    os.environ.update(AUTHD_HOST=host, AUTHD_PORT=str(port), AUTHD_WORKERS=str(workers))
    created_metrics_dir: str | None = None
    if workers > 1:
        # Workers are spawned as fresh interpreters, so they see this before they
        # import prometheus_client; one worker runs in this process, whose metrics
        # module is already imported, and keeps the ordinary in-memory registry.
        if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            created_metrics_dir = tempfile.mkdtemp(prefix="authd-metrics-")
            os.environ["PROMETHEUS_MULTIPROC_DIR"] = created_metrics_dir
        else:
            for stale in Path(os.environ["PROMETHEUS_MULTIPROC_DIR"]).glob("*.db"):
                stale.unlink()
    else:
        os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
    ssl: dict[str, Any] = {}
    if settings.tls_cert_file and settings.tls_key_file:
        ssl = {"ssl_certfile": str(settings.tls_cert_file),
               "ssl_keyfile": str(settings.tls_key_file),
               "ssl_ciphers": TLS12_CIPHERS}
    trusted = ",".join(str(n) for n in settings.trusted_proxies) or "127.0.0.1"
    options: dict[str, Any] = dict(
        factory=True,
        host=host,
        port=port,
        workers=workers,
        # uvloop, with listeners that accept every waiting connection per turn
        # (service/http/accepting.py).
        loop="service.http.accepting:new_event_loop",
        # uvicorn's httptools protocol, each response's head sent with its body in
        # one write (service/http/coalescing.py), the requests of a turn started
        # least recently served connection first (service/http/fair_order.py).
        http=FairHttpToolsProtocol,
        lifespan="on",
        access_log=False,
        log_config=None,
        proxy_headers=bool(settings.trusted_proxies),
        forwarded_allow_ips=trusted,
        timeout_graceful_shutdown=10,
        server_header=False,
        **ssl,
    )
    try:
        if balanced:
            run_balanced(uvicorn.Config("service.app:create_app_from_env", **options))
        else:
            if workers > 1:
                structlog.get_logger("authd.workers").warning(
                    "workers.shared_listener", workers=workers, platform=sys.platform,
                    detail="SO_REUSEPORT does not balance here: the workers share one "
                    "socket and the kernel's accept order decides which one serves")
            # The listener and the admin one, when AUTHD_ADMIN_LISTEN is set
            # (service/http/listeners.py).
            run_bound(uvicorn.Config("service.app:create_app_from_env", **options))
    finally:
        # The multi-worker supervisor returns once its workers stopped; a folder made
        # here is ours to remove, or one per start would pile up in /tmp.
        if created_metrics_dir is not None:
            shutil.rmtree(created_metrics_dir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
