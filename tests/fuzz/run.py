"""``make fuzz``: schemathesis against a live authd, driven by /openapi.json.

Starts the real server on a fresh PostgreSQL database and Redis prefix (the same
production shape as the end-to-end tests), creates an admin API key with ``authd
bootstrap`` so the admin operations are exercised past authentication, runs
schemathesis with a bounded number of examples per operation, and fails when any
response is a 5xx or does not match the document (status code, content type,
headers, body schema). Only 127.0.0.1 is targeted.

    python -m tests.fuzz.run [--max-examples N] [--seed N] [-- extra schemathesis args]

``SCHEMATHESIS`` names the executable (default: ``schemathesis`` next to this
interpreter, i.e. the project's virtualenv).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from tests.support.databases import REDIS_URL, RUN_ID, create_database, drop_run_databases
from tests.support.servers import Server, free_port, new_kek

# Operations that can switch off the fuzzer's own admin credential (disable its
# client, revoke or rotate its key): they run in a second pass, after everything else
# has been exercised with a working credential.
SELF_LOCKING = r"^/admin/(clients/[^/]+/disable|apikeys/[^/]+/(revoke|rotate))$"
CHECKS = ",".join((
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
))


def schemathesis_executable() -> str:
    named = os.environ.get("SCHEMATHESIS")
    beside = Path(sys.executable).parent / "schemathesis"
    found = named or (str(beside) if beside.exists() else shutil.which("schemathesis"))
    if not found:
        sys.exit("fuzz: schemathesis is not installed (it is a dev dependency: make install)")
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="fuzz", description=__doc__.split("\n")[0])
    parser.add_argument("--max-examples", type=int, default=30,
                        help="examples per API operation (default 30)")
    parser.add_argument("--seed", type=int, default=None, help="reproduce a run")
    parser.add_argument("extra", nargs="*", help="passed to schemathesis run")
    args = parser.parse_args(argv)
    executable = schemathesis_executable()

    database_url = asyncio.run(create_database("fuzz"))
    workdir = Path(tempfile.mkdtemp(prefix="authd-fuzz-"))
    env = {
        "AUTHD_DATABASE_URL": database_url,
        "AUTHD_REDIS_URL": REDIS_URL,
        "AUTHD_REDIS_PREFIX": f"authd-fuzz:{RUN_ID}:",
        "AUTHD_KEK": new_kek(),
        # The fuzzer sends thousands of failing credentials from one address.
        "AUTHD_FAILED_AUTH_RATE": "100000/m",
        "AUTHD_API_KEY_DEFAULT_RATE": "100000/m",
    }
    server = Server(env=env, port=free_port(), log_path=workdir / "server.log")
    try:
        server.cli(["migrate"])
        admin = json.loads(server.cli(["--json", "bootstrap"]).stdout)
        server.start()
        server.wait_ready()
        common = [
            executable, "run", f"{server.base_url}/openapi.json",
            "--checks", CHECKS,
            "--max-examples", str(args.max_examples),
            "--header", f"X-API-Key: {admin['api_key']}",
            "--request-timeout", "10",
            "--workers", "2",
            "--no-color",
            *(["--seed", str(args.seed)] if args.seed is not None else []),
            *args.extra,
        ]
        failed = 0
        for selection in ("--exclude-path-regex", "--include-path-regex"):
            command = [*common, selection, SELF_LOCKING]
            shown = [p if admin["api_key"] not in p else "X-API-Key: ****" for p in command]
            print("fuzz:", " ".join(shown), flush=True)
            failed += subprocess.run(command, check=False, cwd=workdir).returncode != 0
        crashed = [line for line in server.logs().splitlines() if "request.crashed" in line]
        if crashed:
            print(f"fuzz: the server logged {len(crashed)} crash(es); first:\n{crashed[0]}")
            return 1
        return 1 if failed else 0
    finally:
        server.stop()
        asyncio.run(drop_run_databases())
        print(f"fuzz: server log kept at {workdir / 'server.log'}")


if __name__ == "__main__":
    sys.exit(main())
