"""The Prometheus HTTP query API (`GET /api/v1/query`), as a health gate reads it: one instant
query at a time, the highest value among the series it returns, and a watch that a query stays
below a threshold for a period. Called by the `signals.check_prometheus` activity.

httpx does the HTTP; there is no Prometheus client library on PyPI for *querying* that is
better kept than the few lines the JSON needs (prometheus-client only exports metrics).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from regatta.models import PrometheusCheck
from regatta.outbound_connections import OutboundUnreachable, send
from regatta.rules.outbound import OutboundRules


class PrometheusUnavailable(Exception):
    """Prometheus did not answer, or answered 5xx: worth another try."""


class BadQuery(ValueError):
    """Prometheus refused the query itself (bad_data): no retry will fix it."""


class CheckFailed(Exception):
    def __init__(self, message: str, *, value: float | None):
        super().__init__(message)
        self.value = value


# What Prometheus' own errorType may be; anything else it says is not repeated (DESIGN rule 13: no third
# party's words reach a reader).
ERROR_TYPES = frozenset({"bad_data", "execution", "timeout", "canceled", "internal", "unavailable", "not_found",
                         "not_acceptable"})


def instant_value(url: str, query: str, *, rules: OutboundRules, timeout: float = 10) -> float | None:
    """The highest value among the series an instant query returns; None when it returns none. The
    request goes through the outbound rules, to the address they checked."""
    try:
        response = send("GET", f"{url.rstrip('/')}/api/v1/query", rules, what="the health check's Prometheus",
                        params={"query": query}, timeout=timeout)
    except OutboundUnreachable as error:
        raise PrometheusUnavailable(f"Prometheus at {url} did not answer: {error}") from None
    if response.status_code >= 500 or response.status_code == 429:
        raise PrometheusUnavailable(f"Prometheus at {url} answered {response.status_code}")
    try:
        body = response.json()
    except ValueError:
        raise BadQuery(f"{url}/api/v1/query did not answer with Prometheus JSON ({response.status_code});"
                       " is the URL Prometheus' base URL?") from None
    if body.get("status") != "success":
        kind = body.get("errorType") if body.get("errorType") in ERROR_TYPES else "error"
        raise BadQuery(f"Prometheus refused the query {query!r} ({kind}, HTTP {response.status_code}); run it in"
                       " Prometheus' own UI to see why")
    data = body.get("data") or {}
    kind, result = data.get("resultType"), data.get("result")
    if kind == "scalar":
        samples = [result]
    elif kind == "vector":
        samples = [series["value"] for series in result or []]
    elif kind == "matrix":
        samples = [series["values"][-1] for series in result or [] if series.get("values")]
    else:
        raise BadQuery(f"Prometheus answered {query!r} with a {kind} result; a gate needs a number")
    values = [float(sample[1]) for sample in samples if sample]
    values = [v for v in values if not math.isnan(v)]
    return max(values) if values else None


def watch_below(check: PrometheusCheck, *, cluster: str, name: str, rules: OutboundRules,
                on_sample: Callable[[float | None], None] = lambda value: None,
                sleep: Callable[[float], None] = time.sleep) -> float | None:
    """Sample the query every `interval_seconds` for `for_seconds`. Every sample must be below
    the threshold: the first that is not fails the check at once, naming its value. Returns the
    highest sample seen."""
    url, query = check.url.replace("$cluster", cluster), check.query.replace("$cluster", cluster)
    deadline = time.monotonic() + check.for_seconds
    highest: float | None = None
    while True:
        value = instant_value(url, query, rules=rules)
        on_sample(value)
        if value is None:
            if check.no_data == "fail":
                raise CheckFailed(f"health check {name}: {query} returned no data from {url} (set no_data: pass if"
                                  " none means healthy)", value=None)
        elif value >= check.below:
            raise CheckFailed(f"health check {name}: {query} = {value:g}, not below {check.below:g}", value=value)
        else:
            highest = value if highest is None else max(highest, value)
        if time.monotonic() >= deadline:
            return highest
        sleep(min(check.interval_seconds, max(deadline - time.monotonic(), 0)))
