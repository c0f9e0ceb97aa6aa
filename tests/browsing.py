"""The fleet view as a browser without JavaScript uses it: the `browser` fixture (signed in with a token of a role, a
session cookie and its CSRF token) and the cluster names a page lists."""

from __future__ import annotations

import re
import uuid

import httpx
import pytest

from regatta.api.app import create_app
from regatta.api.tokens import create_token


class Browser:
    """An HTTP client that keeps cookies, as a browser does, against the API app in process."""

    def __init__(self, app, inventory):
        self.http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://regatta.test",
                                      timeout=60, follow_redirects=False)
        self.inventory = inventory

    async def sign_in(self, role: str, *environments: str) -> str:
        _, secret = create_token(self.inventory, name=f"web-{role}-{uuid.uuid4().hex[:6]}", role=role,
                                 environments=list(environments))
        form = await self.http.get("/ui/login")
        guard = re.search(r'name="csrf" value="([^"]+)"', form.text)[1]
        answer = await self.http.post("/ui/login", data={"token": secret, "csrf": guard, "next": "/ui"})
        assert answer.status_code == 303 and answer.headers["location"] == "/ui", answer.text
        cookie = answer.headers["set-cookie"]
        assert "regatta_session=" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")
        return secret

    async def page(self, path: str, **params) -> httpx.Response:
        return await self.http.get(path, params=params)

    def csrf(self, html: str) -> str:
        return re.search(r'name="csrf" value="([^"]+)"', html)[1]


@pytest.fixture
def browser(queue_settings, inventory) -> Browser:
    return Browser(create_app(queue_settings, inventory), inventory)


def clusters_on(html: str) -> list[str]:
    return re.findall(r'<tr data-cluster="([^"]+)"', html)
