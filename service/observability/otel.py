"""The OpenTelemetry SDK, set up for one process: imported only when tracing is on.

Everything configurable is the SDK's own reading of the ``OTEL_*`` variables
(endpoint, headers, timeout, sampler, resource attributes, batch sizes), already
checked by ``service.observability.tracing``. The one authd default: a service that
names itself nowhere is ``authd``, not the SDK's ``unknown_service``.

The provider is not made the process-global one: authd hands its tracer to what it
wraps, so no other library's instrumentation starts exporting through it unasked.
"""

from __future__ import annotations

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from service.observability.tracing import DEFAULT_SERVICE_NAME


def tracer_provider() -> TracerProvider:
    """A provider exporting in batches over OTLP/HTTP, from a thread of its own."""
    resource = Resource.create()
    if str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        resource = resource.merge(Resource({SERVICE_NAME: DEFAULT_SERVICE_NAME}))
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    return provider
