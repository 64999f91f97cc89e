"""Container health check: GET /healthz (or /readyz) on this container's own authd.

Standard library only, so the image needs no curl. Speaks HTTPS when authd serves
TLS itself (AUTHD_TLS_CERT_FILE); the certificate is not verified because the
check talks to 127.0.0.1, which a production certificate does not name. Exit 0
when healthy, 1 otherwise (Docker's HEALTHCHECK contract).

Two meanings, because orchestrators act differently on "unhealthy":
- default, liveness (/healthz): the process answers. The image's HEALTHCHECK uses
  it, since Swarm and similar replace unhealthy containers, and a database outage
  must not make them kill every replica.
- ``--ready``, readiness (/readyz): database, Redis and an active signing key answer.
  deploy/compose.yaml uses it: compose never restarts an unhealthy container, so
  there "unhealthy" is only a status for operators and for `depends_on`, and each
  probe's 503 is counted in authd_http_requests_total, which the AuthdNotReady alert
  needs.

Usage: python healthcheck.py [--ready] [BASE_URL]
"""

from __future__ import annotations

import argparse
import os
import ssl
import sys
import urllib.error
import urllib.request

TIMEOUT = 2.0


def default_base_url() -> str:
    scheme = "https" if os.environ.get("AUTHD_TLS_CERT_FILE") else "http"
    return f"{scheme}://127.0.0.1:{os.environ.get('AUTHD_PORT', '8000')}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="authd container health check")
    parser.add_argument("--ready", action="store_true",
                        help="probe readiness (/readyz) instead of liveness (/healthz)")
    parser.add_argument("base_url", nargs="?", default=None)
    args = parser.parse_args(argv)
    base = (args.base_url or default_base_url()).rstrip("/")
    url = base + ("/readyz" if args.ready else "/healthz")
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT, context=context) as response:  # noqa: S310
            healthy = response.status == 200
    except (urllib.error.URLError, OSError) as exc:
        # An HTTPError (a 503 from /readyz) lands here too; its text is the status line.
        print(f"unhealthy: {url}: {exc}", file=sys.stderr)
        return 1
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main())
