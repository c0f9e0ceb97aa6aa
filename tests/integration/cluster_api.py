"""A cluster's Kubernetes API as the tests read it from the simulator, with the simulator's token."""

from __future__ import annotations

import httpx

from tests.shared_http import http


class ClusterApi:
    """A cluster's API as any other client (kubectl, a policy engine) reaches it."""

    def __init__(self, simulator, cluster: str, *, site: str | None = None):
        self.base = f"{simulator.url}/k8s/{cluster}"
        token = simulator.world.api_token if site is None else http.get(  # from inside the site, as its agent is
            f"{simulator.url}/sim/credentials/{cluster}", params={"site": site}, timeout=10).json()["token"]
        self.headers = {"Authorization": f"Bearer {token}"}

    def get(self, path: str) -> httpx.Response:
        return http.get(self.base + path, headers=self.headers, timeout=10)

    def apply(self, path: str, body: dict, manager: str) -> httpx.Response:
        return http.patch(self.base + path, params={"fieldManager": manager}, json=body, timeout=10,
                           headers={**self.headers, "Content-Type": "application/apply-patch+yaml"})

    def merge(self, path: str, body: dict) -> httpx.Response:
        return http.patch(self.base + path, json=body, timeout=10,
                           headers={**self.headers, "Content-Type": "application/merge-patch+json"})

    def create(self, path: str, body: dict) -> None:
        response = http.post(self.base + path, json=body, headers=self.headers, timeout=10)
        assert response.status_code == 201, response.text
