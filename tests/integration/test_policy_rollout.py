"""PolicyRollout against the simulator and the real Temporal dev server: a bundle reaches its
clusters stage by stage through server-side apply (field manager `regatta`), CRDs before their
custom resources, with per-cluster substitutions and overrides; the revision is recorded in each
cluster and in the compliance records; what a revision drops is pruned, and only objects carrying
the bundle's label; a field another manager owns is refused naming it unless the bundle says
force; policy-engine objects go out in audit first and each enforcement is gated on the violation
counts the engines report; a fail-closed policy is not enforced where its engine is down."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from temporalio.client import WorkflowFailureError, WorkflowUpdateFailedError

from regatta.models import AbortInput, PauseInput, ResumeInput
from regatta.models.controls import RetryClusterInput, SkipClusterInput, StageApproveInput
from regatta.models.policy import (
    BUNDLE_LABEL,
    BundleSpec,
    PolicyRolloutInput,
    PolicyRolloutProgress,
    PolicyRolloutResult,
)
from regatta.rules.operation_ids import policy_id
from regatta.sim.policy_engines import crd
from tests.conftest import set_faults
from tests.integration import conftest as integration
from tests.integration.cluster_api import ClusterApi
from tests.replaying import patch_ids, replays
from tests.shared_http import http

FAST = {"timeout_seconds": 20, "poll_interval_seconds": 0.05, "activity_heartbeat_timeout_seconds": 5}
# CRDs as their charts would create them (the simulator builds the same for its own engines).
WIDGET_CRD = crd("example.com", "v1", "widgets", "Widget", "Namespaced")
KYVERNO_CRD = crd("kyverno.io", "v1", "clusterpolicies", "ClusterPolicy", "Cluster")
REPORT_CRD = crd("wgpolicyk8s.io", "v1alpha2", "policyreports", "PolicyReport", "Namespaced")
REQUIRE_TEAM = {"apiVersion": "kyverno.io/v1", "kind": "ClusterPolicy", "metadata": {"name": "require-team"},
                "spec": {"background": True, "rules": [{"name": "team-label", "match": {"any": [{"resources": {"kinds": ["Pod"]}}]},
                                                        "validate": {"message": "pods need a team label",
                                                                     "pattern": {"metadata": {"labels": {"team": "?*"}}}}}]}}




def configmap(name: str, data: dict, namespace: str = "kube-system") -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": namespace}, "data": data}


def bundle(tag: str, manifests: list[dict], **fields) -> BundleSpec:
    return BundleSpec.model_validate({"name": f"b-{tag}", "manifests": manifests, "targets": {"selector": {"labels": {"policy": tag}}},
                                      "requested_by": "sre-alice", "ticket": "CHG-POLICY", **FAST, **fields})


async def roll_out(client, task_queue, spec: BundleSpec) -> tuple[PolicyRolloutResult, object]:
    handle = await client.start_workflow("PolicyRollout", spec, id=policy_id(spec.name), task_queue=task_queue,
                                         result_type=PolicyRolloutResult)
    return await asyncio.wait_for(handle.result(), 120), handle


@pytest.fixture
def fleet(add_cluster):
    tag = uuid.uuid4().hex[:6]

    def add(env: str, count: int = 1, *, workloads: list[dict] | None = None, **spec) -> list[str]:
        return [add_cluster(f"pol{env[:4]}", env=env, labels={"policy": tag}, pools=1, nodes=2,
                            workloads=workloads or [], **spec) for _ in range(count)]

    add.tag = tag
    return add


async def test_a_bundle_reaches_every_target_stage_by_stage_with_its_substitutions_and_overrides(
        client, worker, task_queue, fleet, simulator, inventory):
    staging = fleet("staging", 1)
    prod = fleet("prod", 2)
    fleet_tag = fleet.tag
    spec = bundle(fleet_tag, [
        configmap("owner", {"cluster": "{{ cluster.name }}", "env": "{{ cluster.environment }}", "size": "small"}),
        {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w", "namespace": "default"},
         "spec": {"colour": "blue"}},
        WIDGET_CRD,  # listed after its Widget: CRDs are applied first all the same
    ], overrides=[{"selector": {"environment": "prod"}, "target": {"kind": "ConfigMap", "name": "owner"},
                   "patch": [{"op": "replace", "path": "/data/size", "value": "large"}]}])
    result, handle = await roll_out(client, task_queue, spec)
    assert result.outcome == "succeeded", result.message
    assert result.counts == {"applied": 3}
    progress = await handle.query("progress", result_type=PolicyRolloutProgress)
    assert [(s.name, len(s.clusters), s.concurrency) for s in progress.stages] == [("canary", 1, 1), ("rest", 2, 5)]
    assert set(progress.left_out) >= {c.name for c in inventory.list_clusters() if c.labels.get("policy") != fleet_tag}

    for name in staging + prod:
        api = ClusterApi(simulator, name)
        owner = api.get("/api/v1/namespaces/kube-system/configmaps/owner").json()
        assert owner["data"] == {"cluster": name, "env": "prod" if name in prod else "staging",
                                 "size": "large" if name in prod else "small"}
        assert owner["metadata"]["labels"][BUNDLE_LABEL] == spec.name
        assert [m["manager"] for m in owner["metadata"]["managedFields"]] == ["regatta"]
        assert api.get("/apis/example.com/v1/namespaces/default/widgets/w").json()["spec"] == {"colour": "blue"}
        record = api.get(f"/api/v1/namespaces/kube-system/configmaps/regatta-bundle-{spec.name}").json()["data"]
        assert (record["revision"], record["state"], record["rollout"]) == (result.revision, "applied", policy_id(spec.name))
        lines = [(r.action, r.outcome, r.detail) for r in inventory.audit(cluster=name)]
        assert any(line[:2] == ("give_bundle", "succeeded") for line in lines)
        assert (("compliance", "changed", f"{spec.name}: no record → compliant at {result.revision}, 0 violations")
                in lines)
    states = {(r.cluster, r.state, r.revision) for r in inventory.compliance(bundle=spec.name)}
    assert states == {(name, "compliant", result.revision) for name in staging + prod}


async def test_a_new_revision_prunes_what_it_drops_but_never_an_object_without_the_bundles_label(
        client, worker, task_queue, fleet, simulator, inventory):
    [name] = fleet("staging", 1)
    api = ClusterApi(simulator, name)
    first = bundle(fleet.tag, [configmap("keep", {"v": "1"}), configmap("dropped", {"v": "1"}),
                               configmap("adopted", {"v": "1"})], stages=[{"name": "all"}])
    result, _ = await roll_out(client, task_queue, first)
    assert result.outcome == "succeeded", result.message
    first_revision = result.revision
    # Someone takes one object over: with the label gone it is theirs now, and must survive.
    assert api.merge("/api/v1/namespaces/kube-system/configmaps/adopted",
                     {"metadata": {"labels": {BUNDLE_LABEL: None}}}).status_code == 200
    second = first.model_copy(update={"manifests": [configmap("keep", {"v": "2"})]})
    result, handle = await roll_out(client, task_queue, second)
    assert result.outcome == "succeeded", result.message
    assert api.get("/api/v1/namespaces/kube-system/configmaps/keep").json()["data"] == {"v": "2"}
    assert api.get("/api/v1/namespaces/kube-system/configmaps/dropped").status_code == 404
    assert api.get("/api/v1/namespaces/kube-system/configmaps/adopted").status_code == 200
    progress = await handle.query("progress", result_type=PolicyRolloutProgress)
    assert progress.stages[0].clusters[0].detail == "1 configured, 1 pruned"
    history = inventory.compliance_history(cluster=name, bundle=first.name)
    assert [(r.state, r.revision) for r in history] == [("compliant", first_revision), ("compliant", result.revision)]
    assert first_revision != result.revision


async def test_a_field_another_manager_owns_is_refused_naming_it_unless_the_bundle_says_force(
        client, worker, task_queue, fleet, simulator, inventory):
    [name] = fleet("staging", 1)
    api = ClusterApi(simulator, name)
    path = "/api/v1/namespaces/kube-system/configmaps/limits"
    assert api.apply(path, configmap("limits", {"level": "high"}), "kubectl").status_code in (200, 201)
    spec = bundle(fleet.tag, [configmap("limits", {"level": "low"})], stages=[{"name": "all"}])
    result, _ = await roll_out(client, task_queue, spec)
    assert result.outcome == "halted"
    assert 'conflict with "kubectl"' in result.failed[name] and "force" in result.failed[name]
    assert api.get(path).json()["data"] == {"level": "high"}  # nothing of theirs was taken
    [record] = inventory.compliance(bundle=spec.name, cluster=name)
    assert record.state == "error" and "kubectl" in record.detail
    assert api.get(f"/api/v1/namespaces/kube-system/configmaps/regatta-bundle-{spec.name}").json()["data"]["state"] == "partial"

    result, _ = await roll_out(client, task_queue, spec.model_copy(update={"force": True}))
    assert result.outcome == "succeeded", result.message
    live = api.get(path).json()
    assert live["data"] == {"level": "low"}
    assert "regatta" in [m["manager"] for m in live["metadata"]["managedFields"]]
    assert inventory.compliance(bundle=spec.name, cluster=name)[0].state == "compliant"


async def test_a_manifest_the_cluster_refuses_fails_that_cluster_with_the_api_servers_words(
        client, worker, task_queue, fleet, simulator):
    [name] = fleet("staging", 1)
    spec = bundle(fleet.tag, [{"apiVersion": "nothing.example.com/v1", "kind": "Gadget", "metadata": {"name": "g"}}],
                  stages=[{"name": "all"}], failure_budget=1)
    result, _ = await roll_out(client, task_queue, spec)
    assert result.outcome == "succeeded"  # within its failure budget
    assert result.counts == {"failed": 1}
    assert "serves no nothing.example.com/v1" in result.failed[name]


async def test_a_bundle_reaches_a_cluster_that_throttles_a_third_of_its_writes_in_one_or_two_attempts(
        client, worker, task_queue, fleet, simulator):
    """Each of twenty writes meets a 429 a third of the time: the apply asks again within the call
    (server-side apply is idempotent) rather than starting all twenty over, which would almost never
    see twenty successes in a row."""
    [name] = fleet("staging", 1)
    set_faults(simulator, name, error_rate=0.3, error_codes=[429], api="kube")
    try:
        spec = bundle(fleet.tag, [configmap(f"settings-{i}", {"index": str(i)}) for i in range(20)], stages=[{"name": "all"}])
        result, handle = await roll_out(client, task_queue, spec)
    finally:
        set_faults(simulator, name)
    assert (result.outcome, result.counts) == ("succeeded", {"applied": 1}), result
    history = await handle.fetch_history()
    scheduled = {e.event_id: e.activity_task_scheduled_event_attributes.activity_type.name for e in history.events
                 if e.HasField("activity_task_scheduled_event_attributes")}
    attempts = [e.activity_task_started_event_attributes.attempt for e in history.events
                if e.HasField("activity_task_started_event_attributes")
                and scheduled[e.activity_task_started_event_attributes.scheduled_event_id] == "kube.give_bundle"]
    assert attempts and max(attempts) <= 2, attempts


async def test_policies_go_out_in_audit_first_and_each_enforcement_waits_on_fresh_violation_counts(
        client, worker, task_queue, fleet, simulator, inventory, request):
    kyverno = [{"name": "kyverno-admission-controller", "namespace": "kyverno", "replicas": 1}]
    shop = [{"name": "web", "namespace": "shop", "replicas": 1}]  # the pods Kyverno's report is about
    [canary] = fleet("canary", 1, workloads=kyverno + shop)
    [prod] = fleet("prod", 1)  # no Kyverno running: a fail-closed policy must not be enforced here
    for name in (canary, prod):
        api = ClusterApi(simulator, name)
        for definition in (KYVERNO_CRD, REPORT_CRD):
            api.create("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", definition)
    # Kyverno's background scan has found two pods on the canary without a team label.
    ClusterApi(simulator, canary).create("/apis/wgpolicyk8s.io/v1alpha2/namespaces/shop/policyreports", {
        "apiVersion": "wgpolicyk8s.io/v1alpha2", "kind": "PolicyReport", "metadata": {"name": "pods", "namespace": "shop"},
        "summary": {"pass": 3, "fail": 2},
        "results": [{"policy": "require-team", "rule": "team-label", "result": r} for r in ("fail", "fail", "pass")]
        + [{"policy": "someone-elses", "rule": "x", "result": "fail"}]})
    stages = [{"name": "canary", "selector": {"environment": "canary"}}, {"name": "prod"}]
    spec = bundle(fleet.tag, [REQUIRE_TEAM], stages=stages)
    result, handle = await roll_out(client, task_queue, spec)
    await replays(handle, request, "policy_rollout_audit_then_enforce_gated")
    assert result.outcome == "halted"
    assert "enforcing stage canary-enforce: its clusters report 2 violations, more than max_violations 0" in result.message
    progress = await handle.query("progress", result_type=PolicyRolloutProgress)
    assert [(s.name, s.status) for s in progress.stages] == [
        ("canary-audit", "done"), ("prod-audit", "done"), ("canary-enforce", "halted"), ("prod-enforce", "pending")]
    for name in (canary, prod):
        live = ClusterApi(simulator, name).get("/apis/kyverno.io/v1/clusterpolicies/require-team").json()
        assert live["spec"]["validationFailureAction"] == "Audit"
    [record] = inventory.compliance(bundle=spec.name, cluster=canary)
    assert (record.state, record.violations, record.mode) == ("non_compliant", 2, "audit")

    stages[0]["max_violations"] = 5
    result, _ = await roll_out(client, task_queue, spec.model_copy(update={"stages": spec.model_validate(
        {**spec.model_dump(), "stages": stages}).stages}))
    assert result.outcome == "halted"
    live = ClusterApi(simulator, canary).get("/apis/kyverno.io/v1/clusterpolicies/require-team").json()
    assert live["spec"]["validationFailureAction"] == "Enforce"
    assert "enforcing a fail-closed kyverno policy" in result.failed[prod]
    assert "kyverno is not installed" in result.failed[prod]
    live = ClusterApi(simulator, prod).get("/apis/kyverno.io/v1/clusterpolicies/require-team").json()
    assert live["spec"]["validationFailureAction"] == "Audit"  # left as it was


async def test_the_rollout_refuses_a_bundle_it_cannot_plan_and_records_nothing(client, worker, task_queue, fleet, inventory):
    fleet("staging", 1)
    spec = bundle(fleet.tag, [configmap("x", {"v": "{{ cluster.labels.cost_centre }}"})])
    handle = await client.start_workflow("PolicyRollout", spec, id=policy_id(spec.name), task_queue=task_queue,
                                         result_type=PolicyRolloutResult)
    with pytest.raises(WorkflowFailureError) as failure:
        await asyncio.wait_for(handle.result(), 60)
    cause = failure.value.cause
    assert cause.type == "InvalidBundle"
    assert inventory.compliance(bundle=spec.name) == []
    progress = await handle.query("progress", result_type=PolicyRolloutProgress)
    assert (progress.phase, progress.step) == ("failed", "planning the rollout")
    assert "cost_centre" in str(cause.message)


async def refused(handle, update: str, arg, error_type: str) -> str:
    with pytest.raises(WorkflowUpdateFailedError) as failure:
        await handle.execute_update(update, arg, result_type=PolicyRolloutProgress)
    assert failure.value.cause.type == error_type, failure.value.cause
    return str(failure.value.cause.message)


async def test_a_stage_waits_for_a_second_persons_approval_and_every_control_refuses_what_makes_no_sense(
        client, worker, task_queue, fleet, simulator):
    [canary] = fleet("canary", 1)
    prod, skipped = fleet("prod", 2)
    spec = bundle(fleet.tag, [configmap("x", {"v": "1"})], stages=[
        {"name": "canary", "selector": {"environment": "canary"}}, {"name": "prod", "approval_required": True}])
    handle = await client.start_workflow("PolicyRollout", spec, id=policy_id(spec.name), task_queue=task_queue,
                                         result_type=PolicyRolloutResult)
    progress = await integration.wait_phase(handle, "awaiting_approval", PolicyRolloutProgress)
    assert progress.stage == "prod" and [c.status for c in progress.stages[0].clusters] == ["applied"]
    assert ClusterApi(simulator, prod).get("/api/v1/namespaces/kube-system/configmaps/x").status_code == 404

    assert "cannot approve it" in await refused(handle, "approve", StageApproveInput(approver="sre-alice"), "SelfApproval")
    await refused(handle, "approve", StageApproveInput(approver="sre-bob", stage="canary"), "WrongStage")
    await refused(handle, "skip", SkipClusterInput(cluster=prod), "ReasonRequired")
    await refused(handle, "skip", SkipClusterInput(cluster="nowhere", reason="x"), "NotInRollout")
    await refused(handle, "skip", SkipClusterInput(cluster=canary, reason="x"), "TooLateToSkip")
    await refused(handle, "retry", {"cluster": canary}, "StageOver")
    await refused(handle, "resume", ResumeInput(), "NotPaused")
    await handle.execute_update("pause", PauseInput(reason="change freeze"), result_type=PolicyRolloutProgress)
    await refused(handle, "pause", PauseInput(), "AlreadyPaused")
    await handle.execute_update("resume", ResumeInput(), result_type=PolicyRolloutProgress)
    await handle.execute_update("skip", SkipClusterInput(cluster=skipped, reason="mid-migration", requested_by="sre-bob"),
                                result_type=PolicyRolloutProgress)
    await handle.execute_update("approve", StageApproveInput(approver="sre-bob", stage="prod", comment="CAB ok"),
                                result_type=PolicyRolloutProgress)
    result = await asyncio.wait_for(handle.result(), 60)
    assert result.outcome == "succeeded" and result.counts == {"applied": 2, "skipped": 1}
    assert ClusterApi(simulator, prod).get("/api/v1/namespaces/kube-system/configmaps/x").json()["data"] == {"v": "1"}
    assert ClusterApi(simulator, skipped).get("/api/v1/namespaces/kube-system/configmaps/x").status_code == 404


async def test_an_abort_leaves_what_was_not_reached_untouched_and_says_so(client, worker, task_queue, fleet, simulator):
    fleet("canary", 1)
    [prod] = fleet("prod", 1)
    spec = bundle(fleet.tag, [configmap("x", {"v": "1"})], stages=[
        {"name": "canary", "selector": {"environment": "canary"}}, {"name": "prod", "approval_required": True}])
    handle = await client.start_workflow("PolicyRollout", spec, id=policy_id(spec.name), task_queue=task_queue,
                                         result_type=PolicyRolloutResult)
    await integration.wait_phase(handle, "awaiting_approval", PolicyRolloutProgress)
    await handle.execute_update("abort", AbortInput(reason="wrong bundle"), result_type=PolicyRolloutProgress)
    result = await asyncio.wait_for(handle.result(), 60)
    assert result.outcome == "aborted" and "wrong bundle" in result.message
    assert result.counts == {"applied": 1, "aborted": 1}
    assert ClusterApi(simulator, prod).get("/api/v1/namespaces/kube-system/configmaps/x").status_code == 404


async def test_gatekeeper_constraints_go_out_as_dryrun_and_their_total_violations_are_the_count(
        client, worker, task_queue, fleet, simulator, inventory):
    [name] = fleet("staging", 1, policy_engines=["gatekeeper"])
    api = ClusterApi(simulator, name)
    # What Gatekeeper does with a ConstraintTemplate: a CRD for the constraint kind it defines.
    api.create("/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
               crd("constraints.gatekeeper.sh", "v1beta1", "k8srequiredlabels", "K8sRequiredLabels", "Cluster"))
    constraint = {"apiVersion": "constraints.gatekeeper.sh/v1beta1", "kind": "K8sRequiredLabels",
                  "metadata": {"name": "need-owner"},
                  "spec": {"match": {"kinds": [{"apiGroups": [""], "kinds": ["Namespace"]}]}, "parameters": {"labels": ["owner"]}}}
    spec = bundle(fleet.tag, [constraint], stages=[{"name": "all"}], policy_mode="audit")
    result, _ = await roll_out(client, task_queue, spec)
    assert result.outcome == "succeeded", result.message
    path = "/apis/constraints.gatekeeper.sh/v1beta1/k8srequiredlabels/need-owner"
    assert api.get(path).json()["spec"]["enforcementAction"] == "dryrun"
    # Gatekeeper's audit finds three namespaces without an owner label and says so on the constraint.
    assert api.merge(path, {"status": {"totalViolations": 3, "auditTimestamp": "2026-12-01T10:00:00Z"}}).status_code == 200
    result, _ = await roll_out(client, task_queue, spec.model_copy(update={"requested_by": "sre-bob"}))
    [record] = inventory.compliance(bundle=spec.name, cluster=name)
    assert (record.state, record.violations, record.mode) == ("non_compliant", 3, "audit")
    assert "K8sRequiredLabels/need-owner: 3 violations" in record.detail
    assert [(r.state, r.violations) for r in inventory.compliance_history(cluster=name, bundle=spec.name)] == [
        ("compliant", 0), ("non_compliant", 3)]


async def test_a_long_rollout_carries_its_place_into_fresh_runs_so_no_history_grows_with_the_fleet(
        client, worker, task_queue, fleet, simulator, inventory):
    names = fleet("staging", 10)
    spec = bundle(fleet.tag, [configmap("x", {"v": "{{ cluster.name }}"})], stages=[{"name": "all"}])
    request = PolicyRolloutInput.model_validate({**spec.model_dump(), "continue_as_new_after_events": 50})
    handle = await client.start_workflow("PolicyRollout", request, id=policy_id(spec.name), task_queue=task_queue,
                                         result_type=PolicyRolloutResult)
    result = await asyncio.wait_for(handle.result(), 120)
    assert result.outcome == "succeeded" and result.counts == {"applied": 10}, result.message
    runs = [w async for w in client.list_workflows(f'WorkflowId = "{policy_id(spec.name)}"')]
    assert len(runs) >= 2
    for run in runs:
        history = await client.get_workflow_handle(run.id, run_id=run.run_id).fetch_history()
        assert len(history.events) < 50 + 30  # the limit, and what the clusters in flight add before the run hands over
    for name in names:
        assert ClusterApi(simulator, name).get("/api/v1/namespaces/kube-system/configmaps/x").json()["data"] == {"v": name}
    assert sorted(r.cluster for r in inventory.compliance(bundle=spec.name)) == sorted(names)
    lines = [r for name in names for r in inventory.audit(cluster=name) if r.action == "give_bundle"]
    assert len(lines) == 10  # each cluster once, across the runs


async def test_a_failed_cluster_is_retried_while_its_stage_runs_and_the_rollout_succeeds(
        client, worker, task_queue, fleet, simulator, inventory):
    first, slow = fleet("staging", 2)
    path = "/api/v1/namespaces/kube-system/configmaps/limits"
    assert ClusterApi(simulator, first).apply(path, configmap("limits", {"level": "high"}), "kubectl").status_code in (200, 201)
    # The other cluster's API answers 500 a few times: its apply is retried with backoff, so the
    # stage is still running while the first cluster's failure is looked at and retried.
    set_faults(simulator, slow, api="kube", fail_operation="patch_configmaps", fail_times=4, fail_status=500)
    spec = bundle(fleet.tag, [configmap("limits", {"level": "low"})], stages=[{"name": "all", "concurrency": 2}],
                  failure_budget=1)
    handle = await client.start_workflow("PolicyRollout", spec, id=policy_id(spec.name), task_queue=task_queue,
                                         result_type=PolicyRolloutResult)
    def entry(progress: PolicyRolloutProgress, name: str):
        return next((c for s in progress.stages for c in s.clusters if c.name == name), None)

    progress = await integration.wait_until(handle, lambda p: getattr(entry(p, first), "status", "") == "failed",
                                            "the first cluster failed", progress_type=PolicyRolloutProgress)
    assert progress.failed == 1 and 'conflict with "kubectl"' in entry(progress, first).detail
    assert entry(progress, slow).status == "applying"  # its stage still runs
    api = ClusterApi(simulator, first)  # whoever made it by hand removes their copy
    assert http.delete(api.base + path, headers=api.headers, timeout=10).status_code == 200
    await handle.execute_update("retry", RetryClusterInput(cluster=first, requested_by="sre-bob"),
                                result_type=PolicyRolloutProgress)
    result = await asyncio.wait_for(handle.result(), 90)
    assert result.outcome == "succeeded" and result.counts == {"applied": 2}, result.message
    assert ClusterApi(simulator, first).get(path).json()["data"] == {"level": "low"}
    assert ("retry", "resumed") in [(r.action, r.outcome) for r in inventory.audit(cluster=first)]


async def test_a_cluster_skipped_while_the_rollout_waits_for_a_free_slot_is_not_given_the_bundle(
        client, worker, task_queue, fleet, simulator, inventory, request):
    """One slot: the second cluster waits for it, pending; a skip sent meanwhile is honoured when the slot frees (the
    rollout gives the bundle to the cluster pending then, not to the one it looked at before it waited)."""
    clusters = fleet("staging", 2)
    for name in clusters:  # whichever goes first takes a while: its API answers 500 a few times, retried with backoff
        set_faults(simulator, name, api="kube", fail_operation="patch_configmaps", fail_times=4, fail_status=500)
    spec = bundle(fleet.tag, [configmap("quota", {"pods": "100"})], stages=[{"name": "all", "concurrency": 1}])
    handle = await client.start_workflow("PolicyRollout", spec, id=policy_id(spec.name), task_queue=task_queue,
                                         result_type=PolicyRolloutResult)
    progress = await integration.wait_until(
        handle, lambda p: bool(p.stages) and sorted(c.status for c in p.stages[0].clusters) == ["applying", "pending"],
        "one cluster applying, the other waiting for the slot", progress_type=PolicyRolloutProgress)
    waiting = next(c.name for c in progress.stages[0].clusters if c.status == "pending")
    await handle.execute_update("skip", SkipClusterInput(cluster=waiting, reason="mid-migration", requested_by="sre-bob"),
                                result_type=PolicyRolloutProgress)
    result = await asyncio.wait_for(handle.result(), 90)
    assert result.outcome == "succeeded" and result.counts == {"applied": 1, "skipped": 1}, result.message
    assert ClusterApi(simulator, waiting).get("/api/v1/namespaces/kube-system/configmaps/quota").status_code == 404
    given = next(name for name in clusters if name != waiting)
    assert ClusterApi(simulator, given).get("/api/v1/namespaces/kube-system/configmaps/quota").json()["data"] == {"pods": "100"}
    history = await replays(handle, request, "policy_rollout_skipped_while_waiting")
    assert patch_ids(history).count("skip-while-waiting") == 1  # taken where the cluster it looked at was skipped
