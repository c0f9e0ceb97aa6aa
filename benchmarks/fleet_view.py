"""The fleet view's table over a large fleet: how long a page takes to answer, for the queries an
SRE makes (the first page, sorted by cost, filtered by environment and label, by compliance, a
later page), served by the real API app over its ASGI interface with a Temporal dev server behind
it (the page lists the operations in flight).

    python benchmarks/fleet_view.py --clusters 10000 --out benchmarks/results/fleet_view_10000.json

The inventory is SQLite, filled with N clusters (three node pools each, labels, swept capacity)
and a compliance record and some drifts for most of them. Each query runs --repeat times after a
warm-up; the figures are per query p50, p95 and max in milliseconds. Target: every page of a
10,000-cluster fleet answers in under 300 ms (p95).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.stack import parse, save_figures  # noqa: E402
from benchmarks.targets import verdicts  # noqa: E402
from regatta.api.app import create_app  # noqa: E402
from regatta.api.tokens import create_token  # noqa: E402
from regatta.devstack import temporal_binary  # noqa: E402
from regatta.inventory import Inventory, fleet_reads  # noqa: E402
from regatta.inventory.tables import ClusterRow, ComplianceRow, DriftRow  # noqa: E402
from regatta.models.search_attributes import SEARCH_ATTRIBUTES  # noqa: E402
from regatta.settings import Settings  # noqa: E402

PROVIDERS = {"eks": ("m5.large", "m5.xlarge"), "gke": ("e2-standard-4", "e2-standard-8"),
             "aks": ("Standard_D4s_v5", "Standard_D8s_v5")}
REGIONS = {"eks": ["us-east-1", "eu-west-1", "ap-southeast-2"], "gke": ["us-central1", "europe-west4"],
           "aks": ["eastus", "westeurope"]}
ENVIRONMENTS = ["prod", "staging", "dev", "canary"]


def fill(inventory: Inventory, clusters: int) -> None:
    from sqlalchemy.orm import Session

    rng = random.Random(7)
    now = datetime.now(UTC)
    with Session(inventory.engine) as session, session.begin():
        for i in range(clusters):
            provider = rng.choice(list(PROVIDERS))
            env = ENVIRONMENTS[i % 4]
            version = rng.choice(["1.30", "1.31", "1.32"])
            pools = [{"name": f"pool{p}", "version": version, "node_count": rng.randint(2, 12),
                      "node_size": rng.choice(PROVIDERS[provider]), "node_image": f"{version}.2-20261101",
                      "labels": {}, "subnets": [], "taints": []} for p in range(3)]
            session.add(ClusterRow(
                name=f"{provider}-{env}-{i:05d}", provider=provider, region=rng.choice(REGIONS[provider]), environment=env,
                labels={"env": env, "team": f"team-{i % 40}", "tier": rng.choice(["critical", "standard"])},
                control_plane_version=version, node_pools=pools, health="healthy" if rng.random() > 0.02 else "degraded: x",
                credential_ref="default", updated_at=now, pods_capacity=300, pods_free=rng.randint(0, 300),
                cpu_allocatable_m=40000, cpu_requested_m=rng.randint(0, 40000), memory_allocatable_mi=150000,
                memory_requested_mi=rng.randint(0, 150000)))
            if i % 10 != 0:
                state = "non_compliant" if i % 7 == 0 else "compliant"
                session.add(ComplianceRow(cluster=f"{provider}-{env}-{i:05d}", bundle="baseline", state=state,
                                          revision="r1", mode="enforce", violations=3 if state == "non_compliant" else 0,
                                          detail="", evaluated_at=now))
            if i % 50 == 0:
                session.add(DriftRow(cluster=f"{provider}-{env}-{i:05d}", bundle="baseline", found_at=now, drift={
                    "cluster": f"{provider}-{env}-{i:05d}", "bundle": "baseline", "revision": "r1", "kind": "changed",
                    "key": {"api_version": "v1", "kind": "ConfigMap", "namespace": "kube-system", "name": "x"}}))


QUERIES = {
    "first page": {},
    "sorted by cost, dearest first": {"sort": "cost", "desc": "1"},
    "prod, team-8, sorted by CPU used": {"environment": "prod", "label": "team=team-8", "sort": "cpu"},
    "non-compliant, sorted by end of support": {"compliance": "non_compliant", "sort": "end_of_support"},
    "page 50 of 100 per page": {"page": "50", "per_page": "100"},
}


@asynccontextmanager
async def filled_fleet(clusters: int, *, name: str) -> AsyncIterator[tuple[Any, Settings, Inventory, str, float]]:
    """A Temporal dev server and a SQLite inventory of `clusters` filled as above, with a viewer's
    token: (the server's environment, settings for Regatta's processes, the inventory, the token,
    seconds the fill took). The server is stopped on the way out."""
    from temporalio.contrib.pydantic import pydantic_data_converter
    from temporalio.testing import WorkflowEnvironment

    home = Path(tempfile.mkdtemp(prefix=f"regatta-{name}-"))
    env = await WorkflowEnvironment.start_local(dev_server_existing_path=temporal_binary(),
                                                data_converter=pydantic_data_converter,
                                                search_attributes=list(SEARCH_ATTRIBUTES), dev_server_log_level="error")
    try:
        settings = Settings(home=home, temporal_address=env.client.service_client.config.target_host, namespace="default",
                            task_queue=name, database_url=f"sqlite:///{home / 'inventory.db'}", sim_url=None)
        inventory = Inventory(settings.database_url)
        started = time.perf_counter()
        fill(inventory, clusters)
        filled = time.perf_counter() - started
        _, secret = create_token(inventory, name="bench-viewer", role="viewer", environments=["*"])
        yield env, settings, inventory, secret, filled
    finally:
        await env.shutdown()


async def run(clusters: int, repeat: int) -> dict:
    async with filled_fleet(clusters, name="fleet-view") as (_, settings, inventory, secret, filled):
        app = create_app(settings, inventory)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bench", timeout=60) as http:
            form = await http.get("/ui/login")
            guard = form.text.split('name="csrf" value="')[1].split('"')[0]
            signed = await http.post("/ui/login", data={"token": secret, "csrf": guard})
            assert signed.status_code == 303, signed.text
            figures = {}
            for name, params in QUERIES.items():
                await http.get("/ui", params=params)  # warm-up
                times = []
                for _ in range(repeat):
                    start = time.perf_counter()
                    answer = await http.get("/ui", params=params)
                    times.append((time.perf_counter() - start) * 1000)
                    assert answer.status_code == 200, answer.text[:500]
                times.sort()
                figures[name] = {"p50_ms": round(statistics.median(times), 1),
                                 "p95_ms": round(times[max(0, int(len(times) * 0.95) - 1)], 1),
                                 "max_ms": round(times[-1], 1), "rows": answer.text.count("<tr data-cluster=")}
                print(f"{name:45} p50 {figures[name]['p50_ms']:7.1f} ms  p95 {figures[name]['p95_ms']:7.1f} ms"
                      f"  max {figures[name]['max_ms']:7.1f} ms  rows {figures[name]['rows']}")
            # The inventory changes under the page: a hold on one cluster (read again before the page
            # answers), then a sweep that writes every cluster (the page answers from what it had).
            from datetime import timedelta

            from sqlalchemy import update
            from sqlalchemy.orm import Session

            names = sorted(fleet_reads.cluster_names(inventory))
            times = []
            for i in range(repeat):
                inventory.hold_cluster(names[i * 97], until=datetime.now(UTC) + timedelta(hours=2), reason="bench",
                                       held_by="bench", now=datetime.now(UTC))
                start = time.perf_counter()
                answer = await http.get("/ui", params={"sort": "cost", "desc": "1"})
                times.append((time.perf_counter() - start) * 1000)
            times.sort()
            figures["after a hold on one cluster"] = {"p50_ms": round(statistics.median(times), 1),
                                                      "p95_ms": round(times[max(0, int(len(times) * 0.95) - 1)], 1),
                                                      "max_ms": round(times[-1], 1)}
            with Session(inventory.engine) as session, session.begin():
                session.execute(update(ClusterRow).values(updated_at=datetime.now(UTC)))
            start = time.perf_counter()
            answer = await http.get("/ui")
            swept = (time.perf_counter() - start) * 1000
            assert "Much of the fleet changed" in answer.text
            await asyncio.sleep(3)  # the background read
            start = time.perf_counter()
            answer = await http.get("/ui")
            after = (time.perf_counter() - start) * 1000
            assert "Much of the fleet changed" not in answer.text
            figures["right after a sweep wrote every cluster"] = {"ms": round(swept, 1), "then_ms": round(after, 1)}
            for name in ("after a hold on one cluster", "right after a sweep wrote every cluster"):
                print(f"{name:45} {figures[name]}")
        worst = max(f.get("p95_ms", f.get("ms", 0)) for f in figures.values())
        return {"clusters": clusters, "repeat": repeat, "fill_seconds": round(filled, 1), "queries": figures,
                "worst_p95_ms": worst}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clusters", type=int, default=10000)
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--out", type=Path)
    args = parse(parser)
    result = asyncio.run(run(args.clusters, args.repeat))
    missed = [v for v in verdicts(f"fleet_view_{args.clusters}", result) if v["met"] is False]
    print(f"worst p95 {result['worst_p95_ms']} ms over {args.clusters} clusters: {'MISSED' if missed else 'met'}")
    if args.out:
        save_figures(result, args.out)
    os._exit(1 if missed else 0)


if __name__ == "__main__":
    main()
