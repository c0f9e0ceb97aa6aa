"""Where a service's traffic goes: the small interface DR workflows shift traffic through, and
the one implementation Regatta ships, which speaks plain JSON over HTTP to a traffic manager.

The simulator serves that JSON under `/traffic/v1/` (see `regatta/sim/traffic_api.py`). For a
real fleet, put a thin adapter with the same three calls in front of Route 53 weighted records,
Cloud DNS, Azure Traffic Manager or a global load balancer, and point REGATTA_TRAFFIC_URL at it;
or implement `TrafficManager` in-process. Called by `activities/traffic.py`.
"""

from __future__ import annotations

from typing import Protocol

import httpx

from regatta.models import TrafficRecord


class TrafficError(Exception):
    def __init__(self, message: str, *, retryable: bool, status: int | None = None):
        super().__init__(message)
        self.retryable = retryable
        self.status = status


class TrafficManager(Protocol):
    def records_for(self, cluster: str) -> list[TrafficRecord]:
        """Every service whose traffic record names this cluster (whatever its weight)."""

    def set_weights(self, service: str, weights: dict[str, int], *, change_id: str) -> TrafficRecord:
        """Point the service at clusters by weight; the same change id again changes nothing."""

    def record(self, service: str) -> TrafficRecord | None:
        """The service's record; None when the traffic manager holds none for it."""


class HttpTrafficManager:
    def __init__(self, base_url: str, *, timeout: float = 15.0):
        self._http = httpx.Client(base_url=base_url.rstrip("/"), timeout=timeout)

    def _call(self, method: str, path: str, **kwargs) -> dict:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TransportError as error:
            raise TrafficError(f"the traffic manager at {self._http.base_url} did not answer: {error}", retryable=True) from error
        if response.status_code >= 400:
            try:
                message = response.json().get("message") or response.text
            except ValueError:
                message = response.text
            retryable = response.status_code == 429 or response.status_code >= 500
            raise TrafficError(f"the traffic manager refused {method} {path} ({response.status_code}): {message}",
                               retryable=retryable, status=response.status_code)
        return response.json()

    def records_for(self, cluster: str) -> list[TrafficRecord]:
        found = self._call("GET", "/records", params={"cluster": cluster})
        return [TrafficRecord(service=r["service"], weights=r["weights"]) for r in found["records"]]

    def set_weights(self, service: str, weights: dict[str, int], *, change_id: str) -> TrafficRecord:
        record = self._call("PUT", f"/records/{service}", json={"weights": weights, "change_id": change_id})
        return TrafficRecord(service=record["service"], weights=record["weights"])

    def record(self, service: str) -> TrafficRecord | None:
        try:
            found = self._call("GET", f"/records/{service}")
        except TrafficError as error:
            if error.status == 404:
                return None
            raise
        return TrafficRecord(service=found["service"], weights=found["weights"])
