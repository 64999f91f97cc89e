"""CPU per traced request in-process: the SDK building the two spans of a cached
token exchange (the SERVER span and its ``sign`` child, with authd's attributes), then
the same with the batch thread encoding them as OTLP protobuf. No network: what is
left of `BENCH=tracing make bench`'s difference is the export's HTTP and the machine.

    .venv/bin/python tests/bench/bench_span_cost.py [REQUESTS]
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence

from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace import SpanKind


class Dropped(SpanExporter):
    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


class Encoded(SpanExporter):
    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        encode_spans(spans).SerializeToString()
        return SpanExportResult.SUCCESS


def per_request(exporter: SpanExporter, requests: int) -> float:
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(exporter))
    tracer = provider.get_tracer("authd")
    started = time.process_time()
    for _ in range(requests):
        with tracer.start_as_current_span(
            "POST", kind=SpanKind.SERVER, record_exception=False,
            set_status_on_exception=False,
            attributes={"http.request.method": "POST", "url.scheme": "http"},
        ) as span:
            with tracer.start_as_current_span("sign", record_exception=False,
                                              set_status_on_exception=False) as sign:
                sign.set_attribute("authd.signing.kid", "k-2026-12")
                sign.set_attribute("authd.signing.alg", "RS256")
            span.update_name("POST /oauth/token")
            span.set_attribute("http.route", "/oauth/token")
            span.set_attribute("authd.grant", "client_credentials")
            span.set_attribute("http.response.status_code", 200)
    provider.shutdown()  # the export of what is left counts too
    return (time.process_time() - started) / requests * 1e6


if __name__ == "__main__":
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 20000
    print(f"spans built, export dropped: {per_request(Dropped(), count):.0f} us CPU per request")
    print(f"spans built and encoded:     {per_request(Encoded(), count):.0f} us CPU per request")
