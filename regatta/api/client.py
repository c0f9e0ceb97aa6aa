"""The CLI's way to the HTTP API, for operators who go through it rather than to Temporal
directly: set REGATTA_API_URL and REGATTA_TOKEN (a token from `regatta token create`), and the
`op` commands and `upgrade start` act as that token, under its role and environments."""

from __future__ import annotations

from typing import Any

import httpx

from regatta.models.operations import OperationStatus
from regatta.temporal.operations import OperationRefused


class ApiUnreachable(ConnectionError):
    pass


class ApiClient:
    def __init__(self, url: str, token: str | None):
        if not token:
            raise OperationRefused("REGATTA_API_URL is set but REGATTA_TOKEN is not: the API needs a token"
                                   " (`regatta token create`), or unset REGATTA_API_URL to talk to Temporal directly")
        self.url = url.rstrip("/")
        self.headers = {"Authorization": f"Bearer {token}"}

    def _call(self, method: str, path: str, body: dict | None = None) -> tuple[int, Any]:
        try:
            response = httpx.request(method, f"{self.url}{path}", json=body, headers=self.headers, timeout=60)
        except httpx.HTTPError as error:
            raise ApiUnreachable(f"the Regatta API at {self.url} does not answer ({error}); is `regatta api` running?") from None
        payload = response.json() if response.headers.get("content-type", "").startswith("application/json") else {}
        if response.status_code >= 500:
            raise ApiUnreachable(f"the Regatta API answered {response.status_code}: {payload.get('error') or response.text}")
        if response.status_code >= 400:
            raise OperationRefused(f"the API refused ({response.status_code}): {payload.get('error') or response.text}")
        return response.status_code, payload

    def start(self, kind: str, ticket: str, request: dict) -> dict:
        return self._call("POST", "/v1/operations", {"kind": kind, "ticket": ticket, "input": request})[1]

    def operations(self, *, limit: int, running: bool) -> list[dict]:
        """`GET /v1/operations`, its times read back into datetimes."""
        from datetime import datetime

        found = self._call("GET", f"/v1/operations?limit={limit}&running={'true' if running else 'false'}")[1]
        for operation in found:
            for key in ("started", "closed"):
                operation[key] = datetime.fromisoformat(operation[key]) if operation.get(key) else None
        return found

    def status(self, operation_id: str) -> dict:
        return self._call("GET", f"/v1/operations/{operation_id}")[1]

    def operation(self, operation_id: str) -> OperationStatus:
        """`status`, typed (its progress as its kind's model: `operation_catalog.progress_of`)."""
        return OperationStatus.model_validate(self.status(operation_id))

    def control(self, operation_id: str, control: str, body: dict) -> dict:
        return self._call("POST", f"/v1/operations/{operation_id}/{control}", body)[1]
