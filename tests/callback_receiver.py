"""A receiver of Regatta's signed callback notes on 127.0.0.1 (the `receiver` fixture) and the secret it checks them
with: what the callback and drain-escalation tests share."""

from __future__ import annotations

import pytest

from tests.integration.conftest import http_receiver

SECRET = "callback-secret-for-tests"


@pytest.fixture
def receiver():
    """A ticket system's webhook endpoint: records what it is sent; /refuse answers 400."""
    with http_receiver(lambda path, received: (400 if path == "/refuse" else 204, b"")) as server:
        yield server
