"""A local OTLP/HTTP receiver for `make bench`'s tracing section: it answers every
``POST /v1/traces`` with an empty ExportTraceServiceResponse and drops the body, so
the server's cost of tracing is measured, not a collector's.

    python tests/bench/otlp_sink.py PORT
"""

from __future__ import annotations

import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class Sink(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", "0")))
        self.send_response(200 if self.path == "/v1/traces" else 404)
        self.send_header("content-type", "application/x-protobuf")
        self.send_header("content-length", "0")  # an empty message is zero bytes
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        return


if __name__ == "__main__":
    ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Sink).serve_forever()
