"""What a chaos run counts, each from evidence Regatta did not write for the purpose: the simulator's
raw record of what arrived, the Temporal histories, the audit trail held against what each
operation must write, and the objects the clusters hold against what the bundle renders.

Every function takes plain data and returns the faults it found, each a line a person can follow
(empty: none); tests/unit/test_chaos_counters.py plants each fault and sees it counted.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

# --------------------------------------------------------------------------- cloud requests

# POSTs that only read (EKS ListInsights, AKS listClusterUserCredential): never a change.
READING_POSTS = ("/insights", "/listClusterUserCredential")
# The fields a cloud uses to merge a retried request into the first (EKS clientRequestToken).
REQUEST_TOKENS = ("clientRequestToken",)


def cloud_changes_accepted_twice(changes: Iterable[Mapping[str, Any]]) -> dict[str, list[str]]:
    """From the simulator's raw log of changing requests (GET /sim/requests?changes=true): the same
    change (cloud, method, path, body less its request token) accepted (2xx) more than once.

    `started_twice`: under different tokens, or without one: the cloud ran it again.
    `merged_by_token`: repeated under one token, which the cloud answers with the first operation
    (a retry after a lost answer; what EKS documents for clientRequestToken) — counted, not a fault."""
    tokens: dict[tuple[str, str, str, str], list[str | None]] = defaultdict(list)
    for request in changes:
        status = request.get("status")
        if status is None or not 200 <= status < 300:
            continue
        if any(request["path"].endswith(suffix) for suffix in READING_POSTS):
            continue
        body = request.get("body")
        token = None
        if isinstance(body, dict):
            body = dict(body)
            for field in REQUEST_TOKENS:
                token = body.pop(field, None) or token
        change = (request["cloud"], request["method"], request["path"], json.dumps(body, sort_keys=True))
        tokens[change].append(token)
    started_twice, merged = [], []
    for (cloud, method, path, _), seen in tokens.items():
        if len(seen) < 2:
            continue
        distinct = len({t for t in seen if t}) + sum(1 for t in seen if not t)
        line = f"{cloud} {method} {path} accepted {len(seen)} times"
        (started_twice if distinct > 1 else merged).append(line + ("" if distinct > 1 else " under one token"))
    return {"started_twice": sorted(started_twice), "merged_by_token": sorted(merged)}


def operations_started_twice(operations: Iterable[Mapping[str, Any]]) -> list[str]:
    """From the simulator's operations (GET /sim/operations): the same change (cluster, node pool,
    kind, parameters) run as two operations that did not fail."""
    started = Counter((o["cluster"], o.get("node_pool") or "", o["type"], json.dumps(o.get("params"), sort_keys=True))
                      for o in operations if o["status"] != "Failed")
    return sorted(f"{cluster} {pool} {kind} x{count}".replace("  ", " ")
                  for (cluster, pool, kind, _), count in started.items() if count > 1)


# --------------------------------------------------------------------------- Temporal histories

# Activities that change something and that a workflow asks once per input: a second completion
# of one with the same input is the same change made twice. (kube.drain_nodes is asked again by
# design when a budget blocked it; reads may repeat.)
ONCE_EACH = frozenset({
    "cloud.upgrade", "cloud.start_control_plane_upgrade", "cloud.start_node_pool_upgrade", "cloud.create_node_pool",
    "cloud.delete_node_pool", "cloud.update_addons", "cloud.create_cluster", "cloud.delete_cluster",
    "kube.cordon_nodes", "kube.delete_pods", "kube.give_bundle", "kube.record_event", "kube.withdraw_bundle",
})


def repeated_completions(histories: Mapping[str, Iterable[Any]]) -> list[str]:
    """From each workflow's history events (every run of it, in order; temporalio's HistoryEvent
    protos): a changing activity completed more than once with the same input."""
    found = []
    for workflow_id, events in histories.items():
        scheduled: dict[int, tuple[str, bytes]] = {}
        completed: Counter[tuple[str, bytes]] = Counter()
        run = 0
        for event in events:
            if event.HasField("workflow_execution_started_event_attributes"):
                run += 1  # event ids start again in each run
            if event.HasField("activity_task_scheduled_event_attributes"):
                attributes = event.activity_task_scheduled_event_attributes
                scheduled[run * 1_000_000 + event.event_id] = (
                    attributes.activity_type.name, b"\0".join(p.SerializeToString(deterministic=True)
                                                              for p in attributes.input.payloads))
            elif event.HasField("activity_task_completed_event_attributes"):
                key = scheduled.get(run * 1_000_000 + event.activity_task_completed_event_attributes.scheduled_event_id)
                if key is not None and key[0] in ONCE_EACH:
                    completed[key] += 1
        found += [f"{workflow_id}: {kind} completed {count} times with the same input"
                  for (kind, _), count in completed.items() if count > 1]
    return sorted(found)


def failed_workflow_tasks(histories: Mapping[str, Iterable[Any]]) -> list[str]:
    """Workflow tasks that failed for a reason in the workflow's code (a nondeterminism: the code
    did not take the path its history records), from every history: such a workflow is stuck
    until its code is fixed. Failures a worker's death explains (the task handed to another) are
    timeouts, not failures, and are not counted."""
    from temporalio.api.enums.v1 import WorkflowTaskFailedCause

    found = []
    for workflow_id, events in histories.items():
        for event in events:
            if event.HasField("workflow_task_failed_event_attributes"):
                attributes = event.workflow_task_failed_event_attributes
                cause = WorkflowTaskFailedCause.Name(attributes.cause).removeprefix("WORKFLOW_TASK_FAILED_CAUSE_")
                found.append(f"{workflow_id} event {event.event_id}: {cause}: {attributes.failure.message[:200]}")
    return found


# --------------------------------------------------------------------------- the audit trail

# What each kind of operation writes first and last (regatta/models/audit.py's outcomes).
FIRST_LINE = {"ClusterUpgrade": ("upgrade", "started"), "PatchWave": ("wave", "started"),
              "PolicyRollout": ("rollout", "started")}
LAST_ACTION = {"ClusterUpgrade": "upgrade", "PatchWave": "wave", "PolicyRollout": "rollout"}
FINAL_OUTCOMES = frozenset({"succeeded", "failed", "aborted", "refused", "skipped"})


def audit_faults(lines: Iterable[Mapping[str, Any]], operations: Mapping[str, str],
                 running: Iterable[str] = ()) -> dict[str, list[str]]:
    """The audit lines (in the order written) held against the operations that ran (operation id →
    its kind). Lost: an operation with no trail, a trail without its first or last line, a gap in a
    run's numbering. Duplicated: a number written twice in a run, or the same line (action,
    outcome, detail, cluster) written twice for one operation — a step recorded again under a new
    number, which no unique index can catch. An operation still `running` has no last line yet and
    may have lines in flight: only its first line and its duplicates are judged."""
    still = set(running)
    by_operation: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for line in lines:
        if line.get("seq"):
            by_operation[line["operation_id"]].append(line)
    lost, duplicated = [], []
    for operation, kind in sorted(operations.items()):
        trail = by_operation.get(operation, [])
        if not trail:
            lost.append(f"{operation}: no audit line at all")
            continue
        first, last = trail[0], trail[-1]
        if (first["action"], first["outcome"]) != FIRST_LINE[kind] or first["seq"] != 1:
            lost.append(f"{operation}: the first line is {first['action']} {first['outcome']} (line {first['seq']}),"
                        f" not {' '.join(FIRST_LINE[kind])}")
        if operation not in still and (last["action"] != LAST_ACTION[kind] or last["outcome"] not in FINAL_OUTCOMES):
            lost.append(f"{operation}: the last line is {last['action']} {last['outcome']}, not its outcome")
        runs: dict[str, list[int]] = defaultdict(list)
        for line in trail:
            runs[line["run_id"]].append(line["seq"])
        for run, seqs in runs.items():
            counts = Counter(seqs)
            duplicated += [f"{operation} run {run[:8]} line {seq} x{count}" for seq, count in counts.items() if count > 1]
            if operation not in still:
                lost += [f"{operation} run {run[:8]} line {seq}" for seq in range(1, max(seqs) + 1) if seq not in counts]
        said = Counter((line["cluster"], line["action"], line["outcome"], line["detail"]) for line in trail)
        duplicated += [f"{operation}: {action} {outcome} on {cluster} written {count} times"
                       for (cluster, action, outcome, _), count in said.items() if count > 1]
    return {"lost": lost, "duplicated": duplicated}


# --------------------------------------------------------------------------- budgets


def pods_deleted_without_approval(deleted: Iterable[Mapping[str, str]], lines: Iterable[Mapping[str, Any]]) -> list[str]:
    """Pods deleted past their budgets (the simulator's record of every pod DELETE) that no approved
    escalation named: an upgrade's audit trail must hold an `approve approved` line and then a
    `drain escalated` line saying it deleted that pod."""
    approved_operations: set[str] = set()
    named: set[str] = set()
    for line in lines:
        if (line["action"], line["outcome"]) == ("approve", "approved"):
            approved_operations.add(line["operation_id"])
        elif ((line["action"], line["outcome"]) == ("drain", "escalated") and line["detail"].startswith("deleted ")
              and line["operation_id"] in approved_operations):
            pods = line["detail"].removeprefix("deleted ").split(" on ", 1)[0]
            named |= {f"{line['cluster']}:{pod.strip()}" for pod in pods.split(",")}
    return sorted(f"{d['cluster']}:{d['pod']}" for d in deleted if f"{d['cluster']}:{d['pod']}" not in named)


# --------------------------------------------------------------------------- the bundle


def _differences(want: Any, have: Any, where: str) -> list[str]:
    if isinstance(want, dict):
        if not isinstance(have, dict):
            return [f"{where}: is {type(have).__name__}, meant an object"]
        found = []
        for key, value in want.items():
            if key not in have:
                found.append(f"{where}.{key}: missing")
            else:
                found += _differences(value, have[key], f"{where}.{key}")
        return found
    if isinstance(want, list):
        if not isinstance(have, list) or len(have) != len(want):
            return [f"{where}: {have!r} is not {want!r}"]
        return [d for i, (w, h) in enumerate(zip(want, have, strict=True)) for d in _differences(w, h, f"{where}[{i}]")]
    return [] if want == have else [f"{where}: {have!r} is not {want!r}"]


def bundle_differences(rendered: Mapping[str, Mapping[str, Any]], live: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Each rendered object (key → body, as the rollout rendered it for this cluster) held against the
    cluster's object of the same key: missing, or any field it was given that differs (what the API
    server adds — resourceVersion, managedFields — is not compared)."""
    found = []
    for key, body in sorted(rendered.items()):
        if key not in live:
            found.append(f"{key}: missing")
            continue
        found += [f"{key} {d}" for d in _differences(body, live[key], "")]
    return found
