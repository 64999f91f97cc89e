"""What reading the DPoP header costs /oauth/token's dispatch for a request without
one (issue 17): the endpoint of a given commit (default: the one before DPoP) against
the working tree's, in-process, the grant stubbed so that only the dispatch differs.

    .venv/bin/python -m tests.bench.bench_token_dispatch [COMMIT]
"""
import asyncio
import importlib.util
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import service.http.oauth as after

BEFORE_DPOP = "4c12721^"
commit = sys.argv[1] if len(sys.argv) > 1 else BEFORE_DPOP
source = subprocess.run(["git", "show", f"{commit}:service/http/oauth.py"],
                        capture_output=True, text=True, check=True).stdout
path = Path(tempfile.mkdtemp()) / "oauth_before.py"
path.write_text(source)
spec = importlib.util.spec_from_file_location("oauth_before", path)
assert spec is not None and spec.loader is not None
before = importlib.util.module_from_spec(spec)
sys.modules["oauth_before"] = before
spec.loader.exec_module(before)

async def grant(request: Any) -> bytes:
    return b'{"access_token":"x"}'

class Runtime:
    dpop = None

def scope() -> dict[str, Any]:
    return {"type": "http", "method": "POST", "path": "/oauth/token",
            "client": ("127.0.0.1", 5), "state": {"runtime": Runtime()},
            "headers": [(b"host", b"authd"),
                        (b"content-type", b"application/x-www-form-urlencoded"),
                        (b"authorization", b"Basic Y2xfYWJjOmFrX2xpdmVfeHh4eA=="),
                        (b"user-agent", b"bench"), (b"accept", b"*/*")]}

BODY = b"grant_type=client_credentials&scope=read"
async def receive() -> dict[str, Any]:
    return {"type": "http.request", "body": BODY, "more_body": False}
async def send(message: Any) -> None:
    pass

async def run(module: Any, n: int) -> float:
    endpoint = module.TokenEndpoint()
    endpoint.register("client_credentials", grant)
    s = scope()
    t = time.perf_counter()
    for _ in range(n):
        await endpoint(s, receive, send)
    return (time.perf_counter() - t) / n * 1e9

async def main() -> None:
    n = 20000
    for _ in range(2):
        await run(before, n)
        await run(after, n)
    b, a = [], []
    for _ in range(15):  # interleaved, so machine load hits both alike
        b.append(await run(before, n))
        a.append(await run(after, n))
    b.sort()
    a.sort()
    print(f"dispatch ns/request: before min {b[0]:.0f} median {b[7]:.0f}; "
          f"after min {a[0]:.0f} median {a[7]:.0f}; delta of minima {a[0]-b[0]:+.0f} ns")
if __name__ == "__main__":
    asyncio.run(main())
