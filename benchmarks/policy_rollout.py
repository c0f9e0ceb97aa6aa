"""A PolicyRollout of a 20-object bundle to N simulated clusters, a drift sweep of them, and a raw
Temporal fan-out of the same activity count.

    python benchmarks/policy_rollout.py --clusters 1000 --out benchmarks/results/policy_rollout_1000.json

What runs (benchmarks/stack.py): a Temporal dev server, the fleet simulator and the real Regatta
worker, each a process of its own, over the fleet of upgrade_fleet.py. The bundle holds 20 objects
of five kinds in two namespaces, with per-cluster substitutions and an override for prod; it goes
to one canary and then the rest --concurrency at once. Then someone edits one object in every
tenth cluster and a DriftSweep of the bundle must find exactly those. Then the raw fan-out: N
workflows each running as many no-op activities as the rollout ran per cluster.

Prints the figures and saves them as JSON with the keys of the other benchmarks (clusters,
clusters_per_min, ratio_to_raw, max_history_events, worker_peak_rss_mb, ...), plus
objects_applied_per_second and the drift sweep's seconds and objects checked per second.
Targets on 2 cores: at least a patch wave's clusters per minute — measured in the same run: a
PatchWave over the same fleet at the same concurrency, after the sweep (`--no-wave` skips it and
compares with benchmarks/results/patch_wave_1000.json instead) — and a sweep of 1,000 clusters ×
20 objects in 60 s or less (scaled to N).

And the time to compliant: from the rollout's start to each cluster's compliance record (p50, p95,
max), what a platform team waits before a change of policy holds everywhere. Both ends are read
from the rollout's Temporal histories (every run, across continue-as-new), on the server's wall
clock: its start event, and the completion of the activity that gives the bundle to the cluster
and writes its compliance record as its last step. (The record's own evaluated_at is on the
fleet's clock, which the simulator may run faster than the wall's.)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import statistics
import sys
import time
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.stack import UPGRADE_SETTINGS, BenchStack, PeakRss, fleet, parse, save_figures  # noqa: E402
from regatta.models import PatchWaveInput, PatchWaveResult  # noqa: E402
from regatta.models.activities import Activity  # noqa: E402
from regatta.models.policy import BundleSpec, DriftSweepInput, DriftSweepResult, PolicyRolloutResult  # noqa: E402
from regatta.rules.operation_ids import drift_id, policy_id, wave_id  # noqa: E402

PATCH_WAVE = ROOT / "benchmarks" / "results" / "patch_wave_1000.json"


def bundle(concurrency: int) -> BundleSpec:
    manifests = []
    for i in range(8):
        manifests.append({"apiVersion": "v1", "kind": "ConfigMap",
                          "metadata": {"name": f"platform-{i}", "namespace": "kube-system"},
                          "data": {"cluster": "{{ cluster.name }}", "region": "{{ cluster.region }}", "tier": "standard",
                                   "index": str(i)}})
    for i in range(4):
        manifests.append({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"team-{i}", "namespace": "shop"},
                          "data": {"env": "{{ cluster.environment }}", "owner": "shop"}})
    for i in range(4):
        manifests.append({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                          "metadata": {"name": f"deny-{i}", "namespace": "shop"},
                          "spec": {"podSelector": {"matchLabels": {"app": f"a{i}"}}, "policyTypes": ["Ingress"]}})
    for i in range(2):
        manifests.append({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
                          "metadata": {"name": f"reader-{i}", "namespace": "shop"},
                          "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}]})
    for i in range(2):
        manifests.append({"apiVersion": "v1", "kind": "LimitRange", "metadata": {"name": f"limits-{i}", "namespace": "shop"},
                          "spec": {"limits": [{"type": "Container", "default": {"cpu": "500m", "memory": "512Mi"}}]}})
    return BundleSpec.model_validate({
        "name": "bench", "manifests": manifests, "targets": {"selector": {"labels": {"bench": "yes"}}},
        "overrides": [{"selector": {"environment": "prod"}, "target": {"kind": "ConfigMap", "name": "platform-0"},
                       "patch": [{"op": "replace", "path": "/data/tier", "value": "critical"}]}],
        "stages": [{"name": "canary", "pick": {"count": 1}}, {"name": "rest", "concurrency": concurrency}],
        "failure_budget": "100%", "timeout_seconds": 60, "poll_interval_seconds": 0.2})


def edit_every_tenth(sim_url: str, clusters: list[str], token: str) -> list[str]:
    """What someone with kubectl does to one object in every tenth cluster."""
    edited = clusters[::10]
    with httpx.Client(timeout=30, headers={"Authorization": f"Bearer {token}"}) as http:
        for name in edited:
            http.patch(f"{sim_url}/k8s/{name}/api/v1/namespaces/kube-system/configmaps/platform-3",
                       params={"fieldManager": "kubectl-edit"}, json={"data": {"tier": "hand-tuned"}},
                       headers={"Content-Type": "application/merge-patch+json"}).raise_for_status()
    return edited


async def patch_wave_per_minute(stack: BenchStack, clusters: int, concurrency: int) -> float:
    """A PatchWave over the same fleet, as benchmarks/patch_wave.py runs it: clusters per minute."""
    wave = PatchWaveInput(name="bench-compare", target_version="1.31", selector={"labels": {"bench": "yes"}},
                          stages=[{"name": "all", "concurrency": min(concurrency, 200)}], failure_budget="100%",
                          upgrade_settings=UPGRADE_SETTINGS)
    started = time.perf_counter()
    await stack.client.execute_workflow("PatchWave", wave, id=wave_id(wave.name), task_queue=stack.settings.task_queue,
                                        result_type=PatchWaveResult)
    return clusters / (time.perf_counter() - started) * 60


def bundle_given_at(events: Iterable[Any]) -> dict[str, datetime]:
    """When each cluster's bundle activity completed in one run's history: its compliance record is
    the activity's last write. A cluster given the bundle twice counts from the first completion."""
    scheduled: dict[int, str] = {}
    given: dict[str, datetime] = {}
    for event in events:
        if event.HasField("activity_task_scheduled_event_attributes"):
            attributes = event.activity_task_scheduled_event_attributes
            if attributes.activity_type.name == Activity.GIVE_BUNDLE.value:
                scheduled[event.event_id] = json.loads(attributes.input.payloads[0].data)["cluster"]
        elif event.HasField("activity_task_completed_event_attributes"):
            cluster = scheduled.get(event.activity_task_completed_event_attributes.scheduled_event_id)
            if cluster is not None and cluster not in given:
                given[cluster] = event.event_time.ToDatetime()
    return given


def time_to_compliant(started: datetime, given: dict[str, datetime], *, clusters: list[str]) -> dict[str, Any]:
    """p50, p95 and max seconds from the rollout's start to each cluster's compliance record; a
    cluster never given the bundle is counted as such, not left out."""
    seconds = sorted((given[name] - started).total_seconds() for name in clusters if name in given)
    if not seconds:
        return {"p50": None, "p95": None, "max": None, "clusters": 0, "not_given": len(clusters)}
    return {"p50": round(statistics.median(seconds), 2), "p95": round(seconds[math.ceil(len(seconds) * 0.95) - 1], 2),
            "max": round(seconds[-1], 2), "clusters": len(seconds), "not_given": len(clusters) - len(seconds)}


async def rollout_histories(client, workflow_id: str, first_run_id: str) -> list[Any]:
    """Every run of a workflow, the first to the last, following continue-as-new."""
    histories, run_id = [], first_run_id
    while run_id:
        history = await client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
        histories.append(history)
        last = history.events[-1]
        run_id = (last.workflow_execution_continued_as_new_event_attributes.new_execution_run_id
                  if last.HasField("workflow_execution_continued_as_new_event_attributes") else "")
    return histories


async def run(clusters: int, out: Path, *, concurrency: int, compare_wave: bool) -> dict:
    spec = fleet(clusters)
    names = [c.name for c in spec.clusters]
    async with BenchStack(spec) as stack:
        client = stack.client
        request = bundle(concurrency)
        with PeakRss(stack.worker.pid) as rss:
            started = time.perf_counter()
            handle = await client.start_workflow("PolicyRollout", request, id=policy_id(request.name),
                                                 task_queue=stack.settings.task_queue, result_type=PolicyRolloutResult)
            result = await handle.result()
            ours = time.perf_counter() - started
            runs = await rollout_histories(client, handle.id, handle.first_execution_run_id or handle.result_run_id or "")
            activities = sum(1 for run_history in runs for e in run_history.events
                             if e.HasField("activity_task_scheduled_event_attributes"))
            given: dict[str, datetime] = {}
            for run_history in runs:
                for cluster, at in bundle_given_at(run_history.events).items():
                    given.setdefault(cluster, at)
            compliant = time_to_compliant(runs[0].events[0].event_time.ToDatetime(), given, clusters=names)
            token = httpx.get(f"{stack.settings.sim_url}/sim/credentials/{names[0]}", timeout=30).json()["token"]
            edited = edit_every_tenth(stack.settings.sim_url, names, token)
            swept_at = time.perf_counter()
            sweep = await client.execute_workflow("DriftSweep", DriftSweepInput(bundle=request.name),
                                                  id=drift_id(request.name), task_queue=stack.settings.task_queue,
                                                  result_type=DriftSweepResult)
            sweep_seconds = time.perf_counter() - swept_at
            sweep_history = await client.get_workflow_handle(drift_id(request.name)).fetch_history()
        cpu_used = stack.cpu_used()
        wave_per_minute = await patch_wave_per_minute(stack, clusters, concurrency) if compare_wave else None
        per_cluster = max(1, round(activities / clusters))
        raw_time, _ = await stack.raw_fan_out(clusters, per_cluster, workers=1, concurrency=concurrency)

    if wave_per_minute is None:
        wave = json.loads(PATCH_WAVE.read_text()) if PATCH_WAVE.exists() else {}
        wave_per_minute, wave_source = wave.get("clusters_per_min"), f"{PATCH_WAVE.name} (an earlier run)"
    else:
        wave_source = "this run, the same fleet and concurrency"
    objects = len(request.manifests)
    figures = {
        "clusters": clusters,
        "objects_per_cluster": objects,
        "outcome": result.outcome,
        "counts": result.counts,
        "seconds": round(ours, 2),
        "clusters_per_min": round(clusters / ours * 60, 1),
        "concurrency": concurrency,
        "objects_applied": result.applied_objects,
        "objects_applied_per_second": round(result.applied_objects / ours, 1),
        "activities_per_cluster": round(activities / clusters, 2),
        "raw_fan_out_seconds": round(raw_time, 2),
        "raw_fan_out_activities": per_cluster * clusters,
        "ratio_to_raw": round(ours / raw_time, 2),
        "time_to_compliant_seconds": compliant,
        "rollout_runs": len(runs),
        "max_history_events": max(*(len(h.events) for h in runs), len(sweep_history.events)),
        "drift_sweep_seconds": round(sweep_seconds, 2),
        "drift_objects_checked": sweep.checked_objects,
        "drift_objects_checked_per_second": round(sweep.checked_objects / sweep_seconds, 1),
        "drifts_found": sweep.drifts,
        "drifts_made": len(edited),
        "drift_unreachable": len(sweep.unreachable),
        "worker_peak_rss_mb": round(rss.peak / 2**20, 1),
        "cpu_seconds": cpu_used,
        "cpu_seconds_available": round(ours * (os.cpu_count() or 1), 1),
        "patch_wave_clusters_per_min": round(wave_per_minute, 1) if wave_per_minute else None,
        "ratio_to_patch_wave": round(clusters / ours * 60 / wave_per_minute, 2) if wave_per_minute else None,
        "patch_wave_measured_in": wave_source,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    save_figures(figures, out)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clusters", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "policy_rollout.json")
    parser.add_argument("--no-wave", action="store_true", help="skip the PatchWave measured for the comparison")
    args = parse(parser)
    if args.clusters < 1 or not 1 <= args.concurrency <= 500:
        parser.error("--clusters must be at least 1 and --concurrency between 1 and 500")
    asyncio.run(run(args.clusters, args.out, concurrency=args.concurrency, compare_wave=not args.no_wave))
    print(f"saved to {args.out}")


if __name__ == "__main__":
    main()
