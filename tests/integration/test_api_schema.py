"""The API's OpenAPI document, run by schemathesis: whatever a generated request holds (within the
schema, or just outside it), the answer is never a 5xx. Bad input is a 4xx that says what to fix
(tests/integration/test_api.py checks the messages); this checks there is no input we forgot."""

from __future__ import annotations

import dataclasses
import uuid

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from regatta.api.app import create_app
from regatta.api.tokens import create_token


@pytest.fixture
def admin(inventory) -> dict[str, str]:
    _, secret = create_token(inventory, name=f"fuzz-{uuid.uuid4().hex[:8]}", role="admin", environments=["*"])
    return {"Authorization": f"Bearer {secret}"}


def test_no_request_gets_a_server_error(queue_settings, inventory, admin):
    app = create_app(dataclasses.replace(queue_settings, webhook_secret="schemathesis-secret"), inventory)
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {f"{o.method.upper()} {o.path}" for o in operations} >= {
        "POST /v1/operations", "GET /v1/operations/{operation_id}", "POST /v1/operations/{operation_id}/{control}",
        "GET /v1/clusters", "POST /v1/webhooks/ticket-events"}
    for operation in operations:
        @given(case=operation.as_strategy())
        @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def answers_without_a_server_error(case):
            response = case.call(headers={**(case.headers or {}), **admin})
            where = (case.method, case.formatted_path, case.body, response.status_code, response.text)
            assert response.status_code < 500, where
            if response.status_code >= 400:
                assert response.json().get("error"), where  # every refusal says what is wrong

        answers_without_a_server_error()
