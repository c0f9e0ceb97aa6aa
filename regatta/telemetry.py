"""How Regatta's processes tell the outside what they do: log lines as text or as JSON (one object
a line), each line of an operation carrying its operation id and cluster; and traces through
OpenTelemetry (`temporalio.contrib.opentelemetry` on clients and workers, the FastAPI
instrumentation on the API's requests), exported over OTLP when the standard
OTEL_EXPORTER_OTLP_ENDPOINT is set and off otherwise: one trace runs from an API request through
the workflow it starts to its activities.

- Workflow log lines carry Temporal's own `temporal_workflow` details (the operation id is the
  workflow id); a runbook's step adds its `cluster`.
- Activity log lines, their libraries' (boto3, the kubernetes client) included, carry the
  operation id and the cluster the activity acts on: `OperationContext`, a worker interceptor,
  sets them for the activity's run (its thread included).

`regatta worker --log-format json` and `regatta api --log-format json` call `configure_logging`;
`workers/main.py` adds the interceptor.
"""

from __future__ import annotations

import contextvars
import json
import logging
import os
import sys
from datetime import UTC, datetime
from typing import Any, Literal

from temporalio import activity
from temporalio.worker import (
    ActivityInboundInterceptor,
    ExecuteActivityInput,
    Interceptor,
)

LogFormat = Literal["text", "json"]
# The operation an activity (and whatever it calls) runs for: operation_id, cluster.
OPERATION: contextvars.ContextVar[dict[str, str] | None] = contextvars.ContextVar("regatta_operation", default=None)
STANDARD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime", "taskName"}


def cluster_of(value: Any) -> str | None:
    """The cluster an activity's argument names: a cluster's name, a ClusterRef, or a request that holds one."""
    if isinstance(value, str):
        return None
    for field in ("cluster", "ref"):
        found = getattr(value, field, None)
        if isinstance(found, str):
            return found
        name = getattr(found, "name", None)
        if isinstance(name, str):
            return name
    if type(value).__name__ == "ClusterRef":
        return str(value.name)
    return None


def _operation_of(record: logging.LogRecord) -> dict[str, str]:
    found = dict(OPERATION.get() or {})
    for key in ("temporal_workflow", "temporal_activity"):
        details = getattr(record, key, None)
        if isinstance(details, dict) and details.get("workflow_id"):
            found.setdefault("operation_id", str(details["workflow_id"]))
            found.setdefault("workflow_type", str(details.get("workflow_type", "")))
    cluster = getattr(record, "cluster", None)
    if isinstance(cluster, str):
        found["cluster"] = cluster
    elif "operation_id" in found and "cluster" not in found and found["operation_id"].startswith("cluster-"):
        found["cluster"] = found["operation_id"][len("cluster-"):]
    return found


class JsonLines(logging.Formatter):
    """One JSON object a line: time, level, logger, message, the operation's id and cluster, and
    any other extra the caller gave."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(), "logger": record.name, "message": record.getMessage(),
            **_operation_of(record),
        }
        for key, value in record.__dict__.items():
            if key not in STANDARD and key not in line and not key.startswith("_"):
                line[key] = value if isinstance(value, str | int | float | bool | None | dict | list) else str(value)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


class TextLines(logging.Formatter):
    """The human form: time, level, logger, [operation cluster] message."""

    def format(self, record: logging.LogRecord) -> str:
        found = _operation_of(record)
        where = " ".join(v for v in (found.get("operation_id"), found.get("cluster")) if v)
        text = (f"{datetime.fromtimestamp(record.created, UTC):%Y-%m-%dT%H:%M:%S} {record.levelname.lower():7}"
                f" {record.name}: {f'[{where}] ' if where else ''}{record.getMessage()}")
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return text


def configure_logging(log_format: LogFormat = "text", *, level: str = "INFO", stream: Any = None) -> None:
    """Every log line of this process in `log_format`, at `level` and above (libraries at WARNING)."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonLines() if log_format == "json" else TextLines())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("botocore", "urllib3", "kubernetes", "azure", "httpx", "google"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


# ------------------------------------------------------------------ traces

_tracing: dict[str, Any] = {}  # "provider": the TracerProvider in use, when tracing is on


def configure_tracing(service: str) -> bool:
    """Traces exported over OTLP (HTTP) when OTEL_EXPORTER_OTLP_ENDPOINT or
    OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set (the exporter reads the standard OTEL_* variables);
    off otherwise. True when on."""
    if not (os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")):
        return False
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider(resource=Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME", service)}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    use_tracer_provider(provider)
    return True


def use_tracer_provider(provider: Any | None) -> None:
    """Trace through this provider from now on (None: stop). Not the process-wide global: a test
    or an embedding process keeps its own."""
    if provider is None:
        _tracing.pop("provider", None)
    else:
        _tracing["provider"] = provider


def tracer_provider() -> Any | None:
    return _tracing.get("provider")


def temporal_interceptors() -> list[Any]:
    """Temporal's OpenTelemetry interceptor when tracing is on: on a client it traces starts,
    signals and updates; a worker built on that client traces workflows and activities with it."""
    provider = tracer_provider()
    if provider is None:
        return []
    from temporalio.contrib.opentelemetry import TracingInterceptor

    return [TracingInterceptor(provider.get_tracer("regatta"))]


def trace_requests(app: Any) -> None:
    """A span per HTTP request of the API (its trace continues into the operations it starts)."""
    provider = tracer_provider()
    if provider is None:
        return
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    FastAPIInstrumentor.instrument_app(app, tracer_provider=provider, excluded_urls="healthz,metrics")


class _ActivityContext(ActivityInboundInterceptor):
    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        info = activity.info()
        cluster = next((c for c in (cluster_of(arg) for arg in input.args) if c), None)
        context = {"operation_id": info.workflow_id or "", "workflow_type": info.workflow_type or "",
                   "activity": info.activity_type}
        if cluster:
            context["cluster"] = cluster
        token = OPERATION.set(context)
        try:
            return await super().execute_activity(input)
        finally:
            OPERATION.reset(token)


class OperationContext(Interceptor):
    """Worker interceptor: each activity's log lines carry its operation id and cluster."""

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _ActivityContext(next)
