"""Container health check: GET /healthz on this container's own authd.

Standard library only, so the image needs no curl. Speaks HTTPS when authd serves
TLS itself (AUTHD_TLS_CERT_FILE); the certificate is not verified because the
check talks to 127.0.0.1, which a production certificate does not name. Exit 0
when healthy, 1 otherwise (Docker's HEALTHCHECK contract).

Usage: python healthcheck.py [BASE_URL]
"""

from __future__ import annotations

import os
import ssl
import sys
import urllib.error
import urllib.request

TIMEOUT = 2.0


def base_url() -> str:
    if len(sys.argv) > 1:
        return sys.argv[1].rstrip("/")
    scheme = "https" if os.environ.get("AUTHD_TLS_CERT_FILE") else "http"
    return f"{scheme}://127.0.0.1:{os.environ.get('AUTHD_PORT', '8000')}"


def main() -> int:
    url = base_url() + "/healthz"
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT, context=context) as response:  # noqa: S310
            healthy = response.status == 200
    except (urllib.error.URLError, OSError) as exc:
        print(f"unhealthy: {url}: {exc}", file=sys.stderr)
        return 1
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main())
