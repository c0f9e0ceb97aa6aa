"""The HTTP API as a change-ticket system calls it: the `api` fixture (an in-process client of the app, minting tokens
of any role), a fresh ticket, an upgrade's input, and waiting for an operation to end."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest

from regatta.api.app import create_app
from regatta.api.tokens import create_token
from tests.integration.conftest import FAST


@pytest.fixture
def api(queue_settings, inventory):
    """An HTTP client of the API app, and a way to mint tokens for it."""
    app = create_app(queue_settings, inventory)
    transport = httpx.ASGITransport(app=app)

    def token(role: str, *envs: str) -> dict[str, str]:
        _, secret = create_token(inventory, name=f"{role}-{uuid.uuid4().hex[:8]}", role=role, environments=list(envs))
        return {"Authorization": f"Bearer {secret}"}

    client = httpx.AsyncClient(transport=transport, base_url="http://regatta.test", timeout=60)
    client.token = token
    return client


def ticket() -> str:
    return f"CHG-{uuid.uuid4().hex[:8]}"


def upgrade(cluster: str, **fields) -> dict:
    return {"cluster": cluster, "target_version": "1.31", **FAST, **fields}


async def finished(api, headers, operation_id: str, timeout: float = 60) -> dict:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        found = (await api.get(f"/v1/operations/{operation_id}", headers=headers)).json()
        if found["status"] != "RUNNING":
            return found
        assert asyncio.get_running_loop().time() < deadline, found
        await asyncio.sleep(0.1)
