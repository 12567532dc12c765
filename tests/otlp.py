"""A small OTLP/HTTP trace receiver on loopback, for the trace tests: a real HTTP server that takes
POST /v1/traces with `application/x-protobuf` (gzip or not), as an OpenTelemetry collector does,
and decodes each with opentelemetry-proto's ExportTraceServiceRequest (installed with the `otel`
extra). Run in a thread of the test's process, stopped after."""

from __future__ import annotations

import gzip
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

KINDS = {0: "unspecified", 1: "internal", 2: "server", 3: "client", 4: "producer", 5: "consumer"}


@dataclass
class Span:
    """One received span, its ids as hex, its attributes and events' attributes as plain values."""

    name: str
    scope: str
    kind: str
    trace_id: str
    span_id: str
    parent_id: str
    start: int
    attributes: dict[str, Any]
    events: list[tuple[str, dict[str, Any]]]
    error: bool
    resource: dict[str, Any] = field(default_factory=dict)


class Receiver:
    """What arrived: every request body as sent, and the spans in them."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []  # each export as it came over the wire (decompressed)
        self.exports: list[ExportTraceServiceRequest] = []
        self.refused: list[str] = []  # anything that was not an OTLP/HTTP protobuf trace export
        self._lock = threading.Lock()
        self.url = ""

    def take(self, path: str, content_type: str, encoding: str, body: bytes) -> int:
        if path != "/v1/traces" or content_type.split(";")[0].strip() != "application/x-protobuf":
            self.refused.append(f"{path} {content_type}")
            return 415 if path == "/v1/traces" else 404
        if encoding == "gzip":
            body = gzip.decompress(body)
        export = ExportTraceServiceRequest()
        export.ParseFromString(body)
        with self._lock:
            self.bodies.append(body)
            self.exports.append(export)
        return 200

    def spans(self) -> list[Span]:
        with self._lock:
            exports = list(self.exports)
        found = []
        for export in exports:
            for resource_spans in export.resource_spans:
                resource = _attributes(resource_spans.resource.attributes)
                for scope_spans in resource_spans.scope_spans:
                    for span in scope_spans.spans:
                        found.append(
                            Span(
                                name=span.name,
                                scope=scope_spans.scope.name,
                                kind=KINDS[span.kind],
                                trace_id=span.trace_id.hex(),
                                span_id=span.span_id.hex(),
                                parent_id=span.parent_span_id.hex(),
                                start=span.start_time_unix_nano,
                                attributes=_attributes(span.attributes),
                                events=[(e.name, _attributes(e.attributes)) for e in span.events],
                                error=span.status.code == 2,  # STATUS_CODE_ERROR
                                resource=resource,
                            )
                        )
        return sorted(found, key=lambda s: s.start)

    def wait_for(self, done: Callable[[list[Span]], bool], timeout: float = 30.0) -> list[Span]:
        """The spans, once `done` says they are all there; polled, within `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            spans = self.spans()
            if done(spans):
                return spans
            if time.monotonic() > deadline:
                raise AssertionError(f"spans did not arrive in {timeout:g} s: {[s.name for s in spans]}")
            time.sleep(0.05)

    def text(self) -> str:
        """Everything received, decoded, as one text (for scanning what must never be in it)."""
        with self._lock:
            return "\n".join(str(export) for export in self.exports)


def _attributes(pairs: Any) -> dict[str, Any]:
    return {pair.key: _value(pair.value) for pair in pairs}


def _value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [_value(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return _attributes(value.kvlist_value.values)
    return getattr(value, kind) if kind else None


@contextmanager
def otlp_receiver() -> Iterator[Receiver]:
    """A receiver listening on 127.0.0.1 (a free port) until the block ends; its `url` is what
    OTEL_EXPORTER_OTLP_ENDPOINT is set to (the exporter adds /v1/traces)."""
    receiver = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            status = receiver.take(
                self.path,
                self.headers.get("Content-Type", ""),
                self.headers.get("Content-Encoding", ""),
                body,
            )
            answer = ExportTraceServiceResponse().SerializeToString() if status == 200 else b""
            self.send_response(status)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, format: str, *args: Any) -> None:  # quiet
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, name="otlp receiver", daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)
