"""ClusterUpgrade: move one cluster up one Kubernetes minor version without breaking a
PodDisruptionBudget, the way an SRE's runbook does it:

1. Preflight: the target is one minor above the control plane (or the control plane is there
   and node pools are not), no node would break the skew policy, no PDB forbids every
   eviction, the cloud would accept every step, the cluster is ready for the target (no API it
   stops serving still in use, no add-on without a version for it, unless accepted), the
   cluster is healthy.
2. Upgrade the control plane; health gate.
3. Each node pool that is behind (on an older version, or not on the node image asked for), one
   at a time:
   - surge: the cloud adds a new node, drains an old one, removes it; health gate.
   - blue_green: create a replacement pool at the target; health gate; cordon the old pool;
     drain it in batches of `max_unavailable` nodes, health gate after every batch; delete it.
4. Record the new versions in the inventory and the outcome in the audit trail.

A target more than one minor above the control plane (1.29 to 1.32) is the runbook once per minor on the
way (1.30, 1.31, 1.32), each with its own preflight and readiness check (for what is left of the path),
control plane, add-ons, node pools and health gates, the versions recorded, then a soak on that minor
before the next.

Between any two steps the operator may pause (the cluster holds where it is), resume, or
abort (the step in flight finishes, nodes cordoned but still serving go back into service,
and the outcome is recorded). Progress is a Query. Every side effect is an activity.
"""

from __future__ import annotations

from collections.abc import Callable

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

from workflows.pieces.calls import ClusterCalls, call, call_inventory, look_up_cluster, request_token
from workflows.pieces.controller_rollout import ControllerRollout
from workflows.pieces.controls import PauseAndAbort, refuse_when_ended
from workflows.pieces.drain_escalation import EscalationLadder
from workflows.pieces.failures import stop_of
from workflows.pieces.final_progress import keep_final_progress
from workflows.pieces.fleet_clock import FleetClock
from workflows.pieces.holds import refuse_or_override_hold
from workflows.pieces.inputs import check_start, parse_input, tag
from workflows.pieces.kept_pools import KeptPools
from workflows.pieces.minor_path import MinorPath
from workflows.pieces.patches import CLOUD_RULES, FEWER_STEPS, MANAGED_ADDONS, READINESS_GATE, patched
from workflows.pieces.trail import Trail
from workflows.pieces.upgrade_hooks import UpgradeHooks

with workflow.unsafe.imports_passed_through():
    from regatta.models import (
        AbortInput,
        Activity,
        ApproveInput,
        ClusterInspection,
        ClusterRef,
        ClusterState,
        ClusterUpgradeInput,
        ClusterUpgradeProgress,
        ClusterUpgradeResult,
        CordonNodes,
        CreateNodePool,
        DeleteNodePool,
        DrainNodes,
        DrainReport,
        ErrorType,
        GoBackInput,
        NodePool,
        PauseInput,
        PoolProgress,
        ReadForReadiness,
        RecordClusterVersions,
        ResumeInput,
        StartControlPlaneUpgrade,
        StartNodePoolUpgrade,
        UpgradeInsight,
        UpgradeReads,
    )
    from regatta.models.operations import WorkflowName, ended
    from regatta.models.readiness import ApiUsage, ReadinessFinding
    from regatta.rules import cloud_rules, disruption, own_hardware, pool_names, readiness, refusals, rollback, versions, windows

EXAMPLE = '{"cluster": "eks-prod-use1", "target_version": "1.31", "strategy": "surge", "ticket": "CHG-1"}'


@workflow.defn(name=WorkflowName.CLUSTER_UPGRADE)
class ClusterUpgrade:
    # The input is typed `ClusterUpgradeInput | dict` so that JSON typed into the UI that does not
    # fit the model still reaches us and fails the workflow with a message saying what to fix,
    # instead of failing workflow tasks forever as an undecodable payload would.
    @workflow.init
    def __init__(self, input: ClusterUpgradeInput | dict) -> None:
        self.input, self.input_error = parse_input(ClusterUpgradeInput, input, EXAMPLE)
        self.state = ClusterUpgradeProgress(
            cluster=self.input.cluster, target_version=self.input.target_version, strategy=self.input.strategy
        )
        self.ref: ClusterRef | None = None
        self.labels: dict[str, str] = {}
        # The minor this part of the upgrade moves the cluster to: the target, or (over several minors) the one on
        # the way it is at; the node image asked for this cluster's cloud is rolled with the target's, the last.
        self.target = self.input.target_version
        self.final_image: str | None = None
        self.node_image: str | None = None
        self.from_version = ""
        # What the cloud said last, when nothing has changed since (the last step's own reading): the
        # versions recorded at the end, without describing the cluster once more.
        self.described: ClusterState | None = None
        # Each pool's blue/green replacement, named by its cloud's rules at the preflight; the EKS upgrade
        # insights an operator accepted (the control plane is then started with force).
        self.replacements: dict[str, str] = {}
        self.accepted_insights: list[UpgradeInsight] = []
        self.trail = Trail(operation=WorkflowName.CLUSTER_UPGRADE, cluster=lambda: self.input.cluster, state=lambda: self.state,
                           asking=self.input)
        # The fleet's clock: maintenance windows are read on it, and a blocked drain's escalation
        # steps are timed on it, so a simulated fleet's clock can be moved past them in a test.
        self.clock = FleetClock()
        self.path = MinorPath(request=self.input, state=self.state, trail=self.trail, clock=self.clock,
                              record_versions=self._record_versions, hold_or_stop=self._hold_or_stop)
        self.kept = KeptPools(request=self.input, state=self.state, trail=self.trail, clock=self.clock,
                              calls=lambda: self.calls, token=self._token,
                              drain=lambda batch, pool, check: self._drain(batch, pool, check=check),
                              health_gate=lambda after: self._health_gate(after))
        self.hooks = UpgradeHooks(request=self.input, state=self.state, trail=self.trail, calls=lambda: self.calls,
                                  minor=lambda: self.target, from_version=lambda: self.from_version,
                                  labels=lambda: self.labels)
        self.escalation = EscalationLadder(request=self.input, state=self.state, clock=self.clock, trail=self.trail,
                                           ref=self._ref)
        self.controller = ControllerRollout(ref=lambda: self.ref, state=self.state, trail=self.trail)
        self.controls = PauseAndAbort(trail=self.trail, state=lambda: self.state, what="upgrade", hold=self.controller.hold)

    # ------------------------------------------------------------------ queries and updates

    @workflow.query
    def progress(self) -> ClusterUpgradeProgress:
        return self.state

    @workflow.update
    async def pause(self, request: PauseInput) -> ClusterUpgradeProgress:
        await self.controls.pause(request)
        return self.state

    @pause.validator
    def validate_pause(self, request: PauseInput) -> None:
        self.controls.refuse_when_finished("pause")
        self.kept.refuse_while_active("pause")
        self.controls.validate_pause(request)

    @workflow.update
    async def resume(self, request: ResumeInput) -> ClusterUpgradeProgress:
        await self.controls.resume(request)
        return self.state

    @resume.validator
    def validate_resume(self, request: ResumeInput) -> None:
        self.controls.validate_resume(request)

    @workflow.update
    async def approve(self, request: ApproveInput) -> ClusterUpgradeProgress:
        """Approve what a blocked drain's policy waits for: deleting the pods its budgets hold."""
        await self.escalation.approve(request)
        return self.state

    @approve.validator
    def validate_approve(self, request: ApproveInput) -> None:
        refuse_when_ended(self.state.phase, verb="approve", what="upgrade")
        self.escalation.validate_approve(request)

    @workflow.update
    async def abort(self, request: AbortInput) -> ClusterUpgradeProgress:
        await self.controls.abort(request)
        return self.state

    @abort.validator
    def validate_abort(self, request: AbortInput) -> None:
        self.controls.refuse_when_finished("abort")
        self.kept.refuse_while_active("abort")
        self.controls.validate_abort(request)

    @workflow.update
    async def go_back(self, request: GoBackInput) -> ClusterUpgradeProgress:
        """Return to the old node pools a blue/green upgrade keeps (workflows/pieces/kept_pools.py)."""
        await self.kept.go_back(request)
        return self.state

    @go_back.validator
    def validate_go_back(self, request: GoBackInput) -> None:
        self.kept.validate_go_back()

    @workflow.signal(name="abort_from_wave")
    async def abort_from_wave(self, request: AbortInput) -> None:
        """The wave this upgrade belongs to was aborted. A workflow can signal another but cannot
        send it an Update, so this is the `abort` Update's twin without the validator: an upgrade
        that has ended or is already stopping has nothing to do."""
        if not ended(self.state.phase) and not self.state.abort_requested:
            await self.controls.abort(request)

    def waiting_for_agent(self, text: str | None) -> None:
        """Called by the site calls (workflows/pieces/calls.py) while the cluster's site agent is away."""
        self.state.waiting_for = text

    # ------------------------------------------------------------------ small steps

    def _ref(self) -> ClusterRef:
        assert self.ref is not None, "the cluster is looked up before anything acts on it"
        return self.ref

    def _token(self, what: str) -> str:
        """The request token of one cloud change: over several minors, each minor's are its own."""
        return request_token(f"{self.target}-{what}" if self.state.path else what)

    @property
    def calls(self) -> ClusterCalls:
        return ClusterCalls(self._ref(), self.input)

    async def _health_gate(self, after: str, *, timeout: float | None = None,
                           failure_type: str = ErrorType.HEALTH_GATE_FAILED) -> None:
        self.state.step = f"health gate after {after}"
        await self.calls.health_gate(after, timeout=timeout or self.input.health_gate_timeout_seconds,
                                     failure_type=failure_type)

    async def _health_checks(self, after: str) -> None:
        await self.calls.health_checks(self.input.health_checks, after, results=self.state.health_checks,
                                       on_step=lambda step: setattr(self.state, "step", step))

    async def _hold_or_stop(self) -> bool:
        """Between steps: wait while paused, and while outside every maintenance window (or in a
        freeze); say whether an abort asked us to stop here."""
        await self.controls.hold_while_paused()
        if (self.input.maintenance_windows or self.input.freezes) and not self.state.abort_requested:
            await self._wait_for_window()
        return self.state.abort_requested

    async def _wait_for_window(self) -> None:
        """Outside the windows: the step in flight has finished; return cordoned nodes that still
        serve to service, wait (a timer, so a worker restart or days in between change nothing),
        cordon them again, and carry on with the next step."""
        opens = windows.next_start(windows=self.input.maintenance_windows, freezes=self.input.freezes,
                                   after=await self.clock.now())
        if opens is not None and opens <= self.clock.time():
            return
        phase, step = self.state.phase, self.state.step
        handed_back = list(self.state.cordoned_in_service)
        await self._hand_back_cordoned_nodes()
        if opens is None:
            raise ApplicationError("no maintenance window opens outside the freezes within a year: the upgrade stopped"
                                   f" before {step}; start it again with windows that open", type=ErrorType.NO_WINDOW,
                                   non_retryable=True)
        self.state.window_opens = opens
        self.trail.step("waiting_window", f"outside its maintenance windows: resumes {step!r} at {opens.isoformat()}")
        await self.trail.record("window", "paused", f"window closed before {step}; resumes at {opens.isoformat()}"
                                + (f"; returned {', '.join(handed_back)} to service meanwhile" if handed_back else ""))
        while not self.state.abort_requested and self.clock.time() < opens:
            await self.clock.sleep_until(opens, wake=lambda: self.state.abort_requested)
            await self.clock.now()
            if self.clock.time() >= opens:  # a window may have moved (a freeze ended early): look again
                later = windows.next_start(windows=self.input.maintenance_windows, freezes=self.input.freezes,
                                           after=self.clock.time())
                opens = later if later is not None else opens
        self.state.window_opens = None
        if self.state.abort_requested:
            self.state.phase, self.state.step = phase, step
            return
        if handed_back:  # the blue/green drain goes on where it was: its old nodes take no new pods
            self.state.step = f"cordoning {len(handed_back)} nodes again"
            await call(Activity.CORDON_NODES, CordonNodes(cluster=self._ref(), nodes=handed_back), list[str])
            self.state.cordoned_in_service = handed_back
        self.trail.step(phase, step)
        await self.trail.record("window", "resumed", f"window open: resuming {step}")

    async def _read(self) -> UpgradeReads:
        """What the preflight judges: the cloud's view, the cluster's nodes and budgets, the cloud's insights and,
        for the readiness gate, the API versions in use and the add-ons. A managed cluster behind a site agent is
        read in parts: its cloud centrally, its API at the site."""
        ref = self._ref()
        if patched(FEWER_STEPS) and self.calls.reaches_cloud_and_cluster():
            request = ReadForReadiness(cluster=ref, target_version=self.input.target_version)
            return await call(Activity.READ_FOR_UPGRADE, request, UpgradeReads)
        state = await call(Activity.DESCRIBE_CLUSTER, ref, ClusterState)
        reads = UpgradeReads(state=state, inspection=await call(Activity.INSPECT_CLUSTER, ref, ClusterInspection),
                             rooms_unread="not read in this run's preflight" if ref.provider in ("eks", "gke") else None)
        if patched(READINESS_GATE) and versions.moves_control_plane(state.control_plane_version,
                                                                    self.input.target_version):
            reads.usage = await call(Activity.READ_API_USAGE, ReadForReadiness(
                cluster=ref, target_version=self.input.target_version, control_plane_version=state.control_plane_version),
                ApiUsage)
        return reads

    def _gate_on_readiness(self, reads: UpgradeReads, pools: tuple[str, ...]) -> list[ReadinessFinding]:
        """What the target would break that nothing else judges (APIs clients or manifests use that it stops serving,
        add-ons with no version for it, upgraded pools without room for their new nodes), refused unless each finding
        is accepted by its id; what stands is in the progress. Budgets and insights keep their own refusals."""
        state, usage = reads.state, reads.usage
        rooms = [room for room in reads.rooms if room.name in pools]  # a blue/green replacement needs a whole pool
        rooms = rooms if self.input.strategy == "surge" else readiness.blue_green_rooms(rooms)
        if usage is None:  # the control plane does not move (or the run began before the gate): the rooms alone
            report = readiness.room_report(cluster=self.input.cluster, control_plane=state.control_plane_version,
                                           target=self.input.target_version, rooms=rooms, rooms_unread=reads.rooms_unread)
        else:
            report = readiness.readiness_report(
                cluster=self.input.cluster, control_plane=state.control_plane_version, target=self.input.target_version,
                table=usage.table, node_pools=state.node_pools, requested=usage.requested, applied=usage.applied,
                addons=reads.addons, usage_unread=usage.unread, rooms=rooms, rooms_unread=reads.rooms_unread)
        accepted = readiness.refuse_unless_ready(report, self.input.accept_findings)
        self.state.readiness = readiness.standing(report, self.input.accept_findings)
        return accepted

    def _apply_cloud_rules(self, state: ClusterState, inspection: ClusterInspection, insights: list[UpgradeInsight],
                           scope: versions.UpgradeScope) -> None:
        """What the cluster's cloud would refuse half way, refused now; the replacements' names its rules allow;
        the EKS upgrade insights that stop the upgrade unless an operator accepted them."""
        ref = self._ref()
        found = cloud_rules.cloud_refusals(
            provider=ref.provider, control_plane=state.control_plane_version, node_pools=state.node_pools,
            target=self.target, moves_control_plane=scope.control_plane, upgrading=scope.node_pools,
            strategy=self.input.strategy, launch_template_versions=self.input.launch_template_versions,
            budgets=inspection.pdbs, node_image=self.node_image)
        if found:
            raise cloud_rules.CloudRuleViolation("; ".join(found))
        if self.input.strategy == "blue_green":
            self.replacements = pool_names.replacement_pool_names(state.node_pools, scope.node_pools, self.target,
                                                                  self.node_image, provider=ref.provider)
        self.accepted_insights = cloud_rules.refuse_blocking_insights(
            insights, self.target, accepted=self.input.accept_insights) if scope.control_plane else []

    def _plan_path(self, control_plane: str) -> None:
        """Which minor this part of the upgrade moves to (workflows/pieces/minor_path.py); the node image asked
        for is rolled at the last."""
        following = self.path.next(control_plane)
        if following is not None:
            self.target = following.version
            self.node_image = self.final_image if self.path.last(following) else None

    async def _preflight(self) -> tuple[versions.UpgradeScope, ClusterState]:
        self.trail.step("preflight", "reading the control plane, node pools, nodes and budgets")
        ref = self._ref()
        fewer_steps = patched(FEWER_STEPS)
        reads = await self._read()
        state, inspection, insights = reads.state, reads.inspection, reads.insights
        cloud_rules_apply = patched(CLOUD_RULES)  # runs begun before them replay without them (DESIGN rule 9)
        waited = 0.0
        while cloud_rules_apply and state.status == "UPDATING" and waited < self.input.cloud_operation_timeout_seconds:
            # Someone else's change runs in the cloud (an auto-upgrade, a console click): wait for it, visibly.
            self.waiting_for_agent(f"{self.input.cluster} is UPDATING in the cloud with a change Regatta did not start;"
                                   f" waiting for it to finish ({waited:.0f}s of at most"
                                   f" {self.input.cloud_operation_timeout_seconds:.0f}s)")
            await workflow.sleep(self.input.poll_interval_seconds)
            waited += self.input.poll_interval_seconds
            reads = await self._read()
            state, inspection, insights = reads.state, reads.inspection, reads.insights
        if waited:
            self.waiting_for_agent(None)
        self.from_version = self.from_version or state.control_plane_version
        try:
            self._plan_path(state.control_plane_version)
            self.state.insights = [insight.line() for insight in insights if insight.status != "PASSING"
                                   and insight.kubernetes_version == self.target]
            try:
                scope = versions.plan_upgrade(
                    provider=ref.provider, control_plane=state.control_plane_version, node_pools=state.node_pools,
                    target=self.target, node_image=self.node_image,
                )
            except versions.InvalidNodeImage as problem:
                raise versions.InvalidNodeImage(f"node_images.{ref.provider}: {problem}") from None
            skew = versions.skew_violations(
                control_plane=state.control_plane_version, node_versions={n.name: n.version for n in inspection.nodes}
            )
            if skew:
                raise versions.SkewViolation("the cluster already breaks the version-skew policy: " + "; ".join(skew))
            disruption.refuse_unsatisfiable_pdbs(inspection.pdbs)
            if cloud_rules_apply:
                self._apply_cloud_rules(state, inspection, insights, scope)
            accepted = self._gate_on_readiness(reads, scope.node_pools)
        except refusals.Refusal as refusal:
            raise ApplicationError(str(refusal), type=refusal.error_type, non_retryable=True) from None
        if accepted:
            await self.trail.record("readiness", "accepted", f"by {self.input.requested_by}: " + "; ".join(
                f"[{finding.id}] {finding.summary}, because {self.input.accept_findings[finding.id]}" for finding in accepted))
        if self.accepted_insights:
            await self.trail.record("insights", "accepted", f"by {self.input.requested_by}: {self.input.accept_insights}; "
                                    + "; ".join(insight.line() for insight in self.accepted_insights))
        if state.status != "ACTIVE":
            raise ApplicationError(
                f"{self.input.cluster} is {state.status} in the cloud (another change is in flight there);"
                " wait until it is ACTIVE and start the upgrade again",
                type=ErrorType.CLUSTER_BUSY, non_retryable=True,
            )
        # An upgrade starts only from a healthy cluster. One bad sample is not a verdict, so a
        # cluster the inspection found a problem in gets a short health gate rather than a refusal.
        if not (fewer_steps and not inspection.problems):
            await self._health_gate("preflight checks", timeout=min(self.input.health_gate_timeout_seconds, 60),
                                    failure_type=ErrorType.CLUSTER_UNHEALTHY)
        if fewer_steps:
            self.described = state
        self.state.step = "preflight passed"
        pools = {pool.name: pool for pool in state.node_pools}
        self.state.control_plane = "pending" if scope.control_plane else "skipped"
        self.state.pools = [
            PoolProgress(name=name, from_version=pools[name].version, to_version=self.target,
                         strategy=self.input.strategy, nodes_total=pools[name].node_count,
                         from_node_image=pools[name].node_image, to_node_image=self.node_image)
            for name in scope.node_pools
        ]
        return scope, state

    async def _upgrade_control_plane(self) -> None:
        self.trail.step("control_plane", f"upgrading the control plane to {self.target}")
        self.state.control_plane = "upgrading"
        after = "the control plane upgrade"
        if patched(FEWER_STEPS):
            def gating() -> None:
                self.state.control_plane = "done"
                self.state.step = f"health gate after {after}"
            await self._upgrade_step(self._token("cp"), after=after, on_gate=gating)
        else:
            await self.calls.cloud_operation(
                Activity.START_CONTROL_PLANE_UPGRADE,
                StartControlPlaneUpgrade(cluster=self._ref(), target_version=self.target,
                                         request_token=self._token("cp"), force=bool(self.accepted_insights)))
            self.state.control_plane = "done"
            await self._health_gate(after)
        await self._health_checks(after)
        if versions.moves_addons_after_control_plane(self._ref().provider) and patched(MANAGED_ADDONS):
            await self._update_addons()

    async def _update_addons(self) -> None:
        """EKS never moves its managed add-ons (vpc-cni, coredns, kube-proxy) with the control plane: the
        runbook's next step moves each to its catalogue's default for the new version."""
        self.state.step = f"updating the EKS managed add-ons to their defaults for {self.target}"
        self.described = None
        self.state.addons = await self.calls.update_addons(target_version=self.target,
                                                           request_token=self._token("addons"))
        moved = [c for c in self.state.addons if c.status == "updated"]
        if moved:
            await self.trail.record("addons", "changed", "; ".join(f"{c.name} {c.from_version} → {c.to_version}" for c in moved))
            await self._health_gate("the add-on updates")

    async def _upgrade_step(self, token: str, *, after: str, on_gate: Callable[[], None],
                            node_pool: str | None = None) -> bool:
        """The control plane or one node pool: the cloud's upgrade (told the exact release on your own hardware, where
        a controller carries it out), then the health gate. The last step describes the cluster as it leaves it, for
        the inventory. False: an abort held a controller's rollout where it stood, and the step did not finish."""
        last = node_pool == (self.state.pools[-1].name if self.state.pools else None)
        self.described = None

        async def run() -> None:
            self.described = (await self.calls.upgrade(
                target_version=self.target, request_token=token, node_pool=node_pool,
                node_image=self.node_image if node_pool or self._ref().provider in own_hardware.CONTROLLER_DRIVEN else None,
                gate_after=after, gate_timeout=self.input.health_gate_timeout_seconds, on_gate=on_gate, describe_after=last,
                launch_template_version=self.input.launch_template_versions.get(node_pool or ""),
                force=node_pool is None and bool(self.accepted_insights),
                drain_timeout_seconds=self.input.drain_timeout_seconds if node_pool else None)).state
        return await self.controller.step(node_pool, run)

    async def _surge(self, progress: PoolProgress) -> None:
        """The cloud replaces the pool's nodes one by one through the eviction API."""
        self.state.step = f"surge upgrade of node pool {progress.name}" + (f" onto {self.node_image}" if self.node_image else "")
        after = f"node pool {progress.name}"
        token = self._token(f"pool-{progress.name}")
        if patched(FEWER_STEPS):
            def gating() -> None:
                progress.nodes_done = progress.nodes_total
                self.state.step = f"health gate after {after}"
            if not await self._upgrade_step(token, after=after, on_gate=gating, node_pool=progress.name):
                return
        else:
            await self.calls.cloud_operation(
                Activity.START_NODE_POOL_UPGRADE,
                StartNodePoolUpgrade(cluster=self._ref(), node_pool=progress.name, target_version=self.target,
                                     node_image=self.node_image, request_token=token,
                                     launch_template_version=self.input.launch_template_versions.get(progress.name)))
            progress.nodes_done = progress.nodes_total
            await self._health_gate(after)
        await self._health_checks(after)
        progress.status = "done"

    async def _blue_green(self, progress: PoolProgress, pool: NodePool, existing: set[str]) -> None:
        """A new pool at the target takes the workloads; the old one is drained by us, batch by
        batch, under every PDB, and deleted only once empty."""
        replacement = self.replacements.get(pool.name) or pool_names.replacement_pool_name(
            pool.name, self.target, self.node_image)
        progress.replacement_pool = replacement
        self.described = None  # the pools change under steps that do not describe them afterwards
        if replacement not in existing:  # check-then-act: a resumed upgrade may have made it already
            self.state.step = f"creating node pool {replacement} at {self.target}" + (
                f" on {self.node_image}" if self.node_image else "")
            # Made like the pool it replaces: every setting its cloud describes it with is copied by the adapter.
            await self.calls.cloud_operation(
                Activity.CREATE_NODE_POOL,
                CreateNodePool(cluster=self._ref(), request_token=self._token(f"create-{replacement}"),
                               node_pool=pool.model_copy(update={"name": replacement, "version": self.target,
                                                                 "node_image": self.node_image}),
                               like=pool.name, launch_template_version=self.input.launch_template_versions.get(pool.name)))
            await self._health_gate(f"creating node pool {replacement}")

        inspection: ClusterInspection = await call(Activity.INSPECT_CLUSTER, self._ref(), ClusterInspection)
        old_nodes = [node for node in inspection.nodes if node.pool == pool.name]
        self.state.step = f"cordoning the {len(old_nodes)} nodes of {pool.name}"
        await call(Activity.CORDON_NODES, CordonNodes(cluster=self._ref(), nodes=[n.name for n in old_nodes]), list[str])
        self.state.cordoned_in_service = [n.name for n in old_nodes]

        first = True
        for batch in disruption.plan_drain_batches(old_nodes, max_unavailable=self.input.max_unavailable):
            if await self._hold_or_stop():
                return
            if not await self._drain(batch, pool.name, check=[n.name for n in old_nodes] if first else []):
                return  # aborted while the budgets held the drain: its nodes go back into service
            first = False
            self.state.cordoned_in_service = [n for n in self.state.cordoned_in_service if n not in batch]
            self.state.drained_nodes += batch
            progress.nodes_done += len(batch)
            await self._health_gate(f"draining {', '.join(batch)}")

        if self.kept.keeps() and (not self.state.path or self.target == self.state.path[-1].version):
            self.state.kept_pools.append(pool.name)  # cordoned and empty, for a way back (kept_pools.py)
            self.state.drained_nodes = []
            await self._health_checks(f"node pool {pool.name}")
            progress.status = "done"
            return
        if await self._hold_or_stop():  # deleting the pool is a change too: only inside a window
            return
        self.state.step = f"deleting the drained node pool {pool.name}"
        await self.calls.cloud_operation(
            Activity.DELETE_NODE_POOL,
            DeleteNodePool(cluster=self._ref(), node_pool=pool.name, request_token=self._token(f"delete-{pool.name}")))
        self.state.drained_nodes = []
        await self._health_checks(f"node pool {pool.name}")
        progress.status = "done"

    async def _drain(self, batch: list[str], pool: str, *, check: list[str]) -> bool:
        """Drain a batch under every PodDisruptionBudget. While budgets block it, climb the drain
        policy's ladder for the pool and the blocked pods (tell the owner, ask for an approval,
        delete the pods once approved, or give up after drain_timeout_seconds). False when aborted
        meanwhile."""
        request = DrainNodes(cluster=self._ref(), nodes=batch, timeout_seconds=self.input.drain_timeout_seconds,
                             eviction_retry_seconds=self.input.eviction_retry_seconds,
                             blocked_report_after_seconds=self.input.drain_blocked_report_seconds,
                             check_nodes=check, delete_unmanaged_pods=self.input.drain_unmanaged_pods,
                             delete_emptydir_data=self.input.drain_emptydir_data)
        while True:
            self.state.step = f"draining {', '.join(batch)} of node pool {pool}"
            report: DrainReport = await call(Activity.DRAIN_NODES, request, DrainReport,
                                             timeout=self.input.drain_timeout_seconds * len(batch) + 300,
                                             heartbeat=self.input.activity_heartbeat_timeout_seconds)
            if report.blocked is None:
                await self.escalation.drained()
                return True
            if self.state.abort_requested:
                return False
            await self.escalation.climb(report.blocked, pool)

    async def _hand_back_cordoned_nodes(self) -> None:
        """Nodes we cordoned but did not drain still run workloads: return them to service."""
        if self.state.cordoned_in_service:
            self.state.step = f"uncordoning {len(self.state.cordoned_in_service)} nodes that are still in service"
            await call(Activity.CORDON_NODES, CordonNodes(cluster=self._ref(), nodes=self.state.cordoned_in_service,
                                                          unschedulable=False), list[str])
            self.state.cordoned_in_service = []

    async def _record_versions(self) -> ClusterState:
        self.trail.step("recording", "recording the new versions in the inventory")
        state = self.described or await call(Activity.DESCRIBE_CLUSTER, self._ref(), ClusterState)
        await call_inventory(Activity.RECORD_CLUSTER_VERSIONS, RecordClusterVersions(
            cluster=self.input.cluster, control_plane_version=state.control_plane_version, node_pools=state.node_pools), None)
        return state

    def _versions(self, after: str | None) -> str:
        """Before and after, as the audit trail states them."""
        return f"control plane before {self.from_version or 'unknown'}" + (f", after {after}" if after is not None else "")

    def _result(self, outcome: str, control_plane_version: str) -> ClusterUpgradeResult:
        return ClusterUpgradeResult(operation_id=workflow.info().workflow_id, cluster=self.input.cluster, outcome=outcome,
                                    from_version=self.from_version, target_version=self.input.target_version,
                                    control_plane_version=control_plane_version, pools=self.state.pools,
                                    message=self.state.message)

    async def _stop_failed(self, failure: BaseException) -> None:
        """Leave the cluster serving, say exactly where and why the upgrade stopped, and fail."""
        moved = any(step.status == "done" for step in self.state.path)
        stop = stop_of(failure, where=self.state.step, refused=self.state.phase == "preflight" and not moved,
                       default_type=ErrorType.UPGRADE_FAILED)
        for progress in self.state.pools:
            if progress.status == "upgrading":
                progress.status = "failed"
        self.path.end("failed", self.target)
        self.state.message = stop.message + self.path.where(self.from_version) + self.kept.left_behind()
        self.trail.step("failed", stop.where)
        try:
            await self._hand_back_cordoned_nodes()
        except ActivityError as error:
            self.state.message += (
                f". Could not return nodes {', '.join(self.state.cordoned_in_service)} to service ({error.cause});"
                " uncordon them by hand"
            )
        await self.trail.record("upgrade", "refused" if stop.refused else "failed",
                                f"{self._versions(None)}; {self.state.message}" if self.from_version else self.state.message)
        await workflow.wait_condition(workflow.all_handlers_finished)
        keep_final_progress(self.state)
        raise stop.error(self.state.message)

    async def _finish(self, outcome: str) -> ClusterUpgradeResult:
        final = await self._record_versions()
        self.trail.step(outcome, outcome if outcome == "aborted" else "done")
        await self.trail.record("upgrade", outcome, f"{self._versions(final.control_plane_version)}; {self.state.message}")
        await workflow.wait_condition(workflow.all_handlers_finished)
        keep_final_progress(self.state)
        return self._result(outcome, final.control_plane_version)

    async def _upgrade_node_pools(self, state: ClusterState) -> None:
        pools = {pool.name: pool for pool in state.node_pools}
        self.trail.step("node_pools", "upgrading node pools")
        for progress in self.state.pools:
            if await self._hold_or_stop():
                return
            if progress is self.state.pools[0]:
                await self.hooks.run("before_node_pools")
            progress.status = "upgrading"
            if self.input.strategy == "surge":
                await self._surge(progress)
            else:
                await self._blue_green(progress, pools[progress.name], set(pools))
            if self.state.abort_requested and progress.status != "done":
                return
        if self.state.pools and all(progress.status == "done" for progress in self.state.pools):
            await self.hooks.run("after_node_pools")

    # ------------------------------------------------------------------ the runbook

    @workflow.run
    async def run(self, input: ClusterUpgradeInput | dict) -> ClusterUpgradeResult:
        input = self.input
        check_start(trail=self.trail, state=self.state, input_error=self.input_error, cluster=input.cluster)
        record = await look_up_cluster(input.cluster, trail=self.trail, state=self.state)
        self.ref, self.labels = record.ref, record.labels
        self.node_image = self.final_image = self.state.target_node_image = input.node_images.get(record.ref.provider)
        tag(operation=WorkflowName.CLUSTER_UPGRADE, cluster=input.cluster, environment=record.environment, ticket=input.ticket)
        if record.hold is not None:  # the inventory hands back a hold only while it is in force
            await refuse_or_override_hold(record.hold, request=input, state=self.state, trail=self.trail, action="upgrade")
        onto = f" on node image {self.node_image}" if self.node_image else ""
        await self.trail.record(
            "upgrade", "started", f"to {input.target_version}{onto} by {input.strategy} (requested by {input.requested_by})"
        )
        try:
            while True:  # once, or once per minor on the way to the target
                scope, state = await self._preflight()
                if scope.control_plane and not await self._hold_or_stop():
                    # hooks may take long: a pause or an abort sent meanwhile holds before the control plane moves
                    if not (await self.hooks.run("before_control_plane") and await self._hold_or_stop()):
                        await self._upgrade_control_plane()
                        await self.hooks.run("after_control_plane")
                await self._upgrade_node_pools(state)
                if self.state.abort_requested or not await self.path.between(self.target):
                    break
            if self.state.kept_pools and not self.state.abort_requested and await self.kept.keep_or_go_back():
                self.state.message = (f"went back to {', '.join(p.name for p in self.state.pools)} because"
                                      f" {self.kept.going_back.reason if self.kept.going_back else ''}; the control plane"
                                      f" stays on {self.target} ({rollback.way_back(self._ref().provider)})")
                return await self._finish("rolled_back")
        except (ActivityError, ApplicationError) as failure:
            await self._stop_failed(failure)

        if self.state.abort_requested:
            await self._hand_back_cordoned_nodes()
            for progress in self.state.pools:
                if progress.status != "done":
                    progress.status = "aborted"
            done = [p.name for p in self.state.pools if p.status == "done"]
            self.path.end("aborted", self.target)
            self.state.message = (
                f"aborted ({self.state.abort_reason or 'no reason given'}){self.path.where(self.from_version)}; control plane"
                f" {self.state.control_plane},"
                f" node pools finished: {', '.join(done) or 'none'}{self.kept.left_behind()}. Start the upgrade again to"
                " continue" + (f". {self.state.rollout}" if self.state.rollout else "")
            )
            return await self._finish("aborted")
        self.path.end("succeeded", self.target)
        self.state.message = f"{input.cluster} runs {input.target_version} on the control plane and every node pool" + (
            f", every pool on node image {self.node_image}" if self.node_image else "") + (
            f", by way of {', '.join(step.version for step in self.state.path[:-1])}" if self.state.path else "")
        return await self._finish("succeeded")
