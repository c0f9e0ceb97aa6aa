"""ProvisionCluster: build a new cluster the way the platform team's runbook does, and leave
nothing behind if it cannot be finished:

1. Validate against the fleet rules: the name is well-formed and free, the version
   supported, the region allowed, node pool sizes within limits.
2. Create the control plane (idempotent: a retry after a crash finds the cluster it made).
3. Create each node pool.
4. Wait until the API answers and every node is Ready (heartbeating).
5. Bootstrap: namespaces, RBAC for the SRE group, the baseline policy bundle.
6. Register the cluster in the inventory with its labels; record the outcome in the audit log.

Each thing is written into `state.created` *before* it is asked for, so a failure at any step
deletes everything that may exist, in reverse order (the saga's compensations), and the
operation ends failed with the reason.
"""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

from workflows.pieces.calls import ClusterCalls, call, request_token
from workflows.pieces.failures import stop_of
from workflows.pieces.inputs import check_start, parse_input, tag
from workflows.pieces.patches import FIRST_POOL_WITH_CLUSTER, patched
from workflows.pieces.trail import Trail

with workflow.unsafe.imports_passed_through():
    from regatta.models import (
        Activity,
        BootstrapCluster,
        ClusterRecord,
        CreateCluster,
        CreateNodePool,
        DeleteCluster,
        DeleteNodePool,
        NodePool,
        NodePoolRequest,
        ProvisionClusterInput,
        ProvisionClusterProgress,
        ProvisionClusterResult,
    )
    from regatta.models.errors import ErrorType
    from regatta.models.operations import WorkflowName
    from regatta.rules import provisioning

EXAMPLE = ('{"name": "eks-team-a-use1", "provider": "eks", "region": "us-east-1", "version": "1.31",'
           ' "environment": "dev", "node_pools": [{"name": "general", "node_count": 3}]}')


@workflow.defn(name=WorkflowName.PROVISION_CLUSTER)
class ProvisionCluster:
    @workflow.init
    def __init__(self, input: ProvisionClusterInput | dict) -> None:
        self.input, self.input_error = parse_input(ProvisionClusterInput, input, EXAMPLE)
        self.state = ProvisionClusterProgress(cluster=self.input.name)
        self.trail = Trail(operation=WorkflowName.PROVISION_CLUSTER, cluster=lambda: self.input.name, state=lambda: self.state,
                           asking=self.input)
        self.calls: ClusterCalls  # once the input is known to be valid

    @workflow.query
    def progress(self) -> ProvisionClusterProgress:
        return self.state

    # ------------------------------------------------------------------ steps

    async def _validate(self) -> None:
        self.trail.step("validating", "checking the fleet rules")
        free = await call(Activity.CHECK_NAME_FREE, self.input.name, bool)
        problems = provisioning.fleet_rule_violations(
            name=self.input.name, provider=self.input.provider, region=self.input.region, version=self.input.version,
            pools=[(p.name, p.node_count) for p in self.input.node_pools], taken=not free,
        )
        if problems:
            raise ApplicationError("; ".join(problems), type=ErrorType.FLEET_RULE_VIOLATION, non_retryable=True)

    async def _create(self, what: str, start: Activity, request) -> None:
        """Note the resource as created, ask for it, and wait until the cloud says it exists."""
        self.state.created.append(what)
        await self.calls.cloud_operation(start, request)

    def _pool(self, pool: NodePoolRequest, *, mode: str | None = None) -> NodePool:
        return NodePool(name=pool.name, version=self.input.version, node_count=pool.node_count,
                        node_size=pool.node_size, labels=pool.labels, taints=pool.taints,
                        subnets=pool.subnets or self.input.network.subnets,
                        node_role=pool.node_role or self.input.network.node_role, mode=mode)

    async def _build(self) -> None:
        self.trail.step("creating", f"creating the {self.input.provider} control plane {self.input.name} at {self.input.version}")
        # GKE and AKS create a cluster only with nodes: its first pool goes in the create request (on AKS as its
        # System pool), and goes with the cluster if the cluster must be taken down again.
        born_with = provisioning.born_with_first_pool(self.input.provider) and patched(FIRST_POOL_WITH_CLUSTER)
        first = self._pool(self.input.node_pools[0], mode="System" if self.input.provider == "aks" else None) \
            if born_with else None
        await self._create("cluster", Activity.CREATE_CLUSTER, CreateCluster(
            cluster=self.calls.ref, version=self.input.version, labels=self.input.labels, request_token=request_token("cluster"),
            network=self.input.network, first_pool=first))
        if first is not None:
            self.state.created.append(f"node_pool:{first.name}")
            self.state.with_cluster.append(first.name)
        for pool in self.input.node_pools[1 if born_with else 0:]:
            self.state.step = f"creating node pool {pool.name} ({pool.node_count} × {pool.node_size})"
            await self._create(f"node_pool:{pool.name}", Activity.CREATE_NODE_POOL, CreateNodePool(
                cluster=self.calls.ref, node_pool=self._pool(pool, mode="User" if self.input.provider == "aks" else None),
                request_token=request_token(f"pool-{pool.name}")))
        nodes = sum(p.node_count for p in self.input.node_pools)
        self.state.step = f"health gate after creating {nodes} nodes"
        await self.calls.health_gate(f"creating {nodes} nodes", timeout=self.input.ready_timeout_seconds,
                                     failure_type=ErrorType.CLUSTER_NOT_READY, min_ready_nodes=nodes)

        self.trail.step("bootstrapping", "namespaces, RBAC and the baseline policy bundle")
        self.state.bootstrapped = await call(Activity.BOOTSTRAP_CLUSTER, BootstrapCluster(
            cluster=self.calls.ref, namespaces=self.input.namespaces, admin_group=self.input.admin_group,
            environment=self.input.environment, labels=self._record().labels, version=self.input.version), list[str])

        self.trail.step("registering", "registering the cluster in the inventory")
        self.state.created.append("inventory")
        await call(Activity.REGISTER_CLUSTER, self._record(), None)

    def _record(self) -> ClusterRecord:
        return ClusterRecord(
            name=self.input.name, provider=self.input.provider, region=self.input.region,
            environment=self.input.environment, labels={"env": self.input.environment, **self.input.labels},
            control_plane_version=self.input.version, health="healthy", credential_ref=self.input.credential_ref,
            node_pools=[NodePool(name=p.name, version=self.input.version, node_count=p.node_count, node_size=p.node_size,
                                 labels=p.labels) for p in self.input.node_pools],
        )


    async def _compensate(self) -> list[str]:
        """Undo what exists, newest first. Returns what could not be undone."""
        self.trail.step("compensating", "deleting what this operation created")
        left = []
        for what in reversed(self.state.created):
            self.state.step = f"compensating: removing {what}"
            try:
                if what == "inventory":
                    await call(Activity.DEREGISTER_OWN_REGISTRATION, self._record(), bool)
                elif what == "cluster":
                    await self.calls.cloud_operation(Activity.DELETE_CLUSTER, DeleteCluster(
                        cluster=self.calls.ref, request_token=request_token("delete-cluster")))
                elif what.removeprefix("node_pool:") in self.state.with_cluster:
                    continue  # it goes with the cluster, which its cloud would not leave without a pool
                else:
                    pool = what.removeprefix("node_pool:")
                    await self.calls.cloud_operation(Activity.DELETE_NODE_POOL, DeleteNodePool(
                        cluster=self.calls.ref, node_pool=pool, request_token=request_token(f"delete-{pool}")))
            except ActivityError as error:
                left.append(f"{what} ({error.cause})")
        return left

    # ------------------------------------------------------------------ the runbook

    @workflow.run
    async def run(self, input: ProvisionClusterInput | dict) -> ProvisionClusterResult:
        input = self.input
        check_start(trail=self.trail, state=self.state, input_error=self.input_error, cluster=input.name)
        self.calls = ClusterCalls(input.ref, input)
        tag(operation=WorkflowName.PROVISION_CLUSTER, cluster=input.name, environment=input.environment, ticket=input.ticket)
        await self.trail.record("provision", "started",
                                f"{input.provider} {input.region} {input.version}, pools "
                                + ", ".join(f"{p.name}×{p.node_count}" for p in input.node_pools))
        try:
            await self._validate()
            await self._build()
        except (ActivityError, ApplicationError) as failure:
            stop = stop_of(failure, where=self.state.step, refused=self.state.phase == "validating",
                           default_type=ErrorType.PROVISION_FAILED)
            left = await self._compensate() if self.state.created else []
            self.state.message = stop.message
            if self.state.created:
                self.state.message += (f". Could not remove: {'; '.join(left)} — delete them by hand" if left
                                       else ". Everything it had created was deleted")
            self.trail.step("failed", stop.where)
            await self.trail.record("provision", "refused" if stop.refused else "failed", self.state.message)
            await workflow.wait_condition(workflow.all_handlers_finished)
            raise stop.error(self.state.message) from None

        self.state.message = f"{input.name} is up: {input.provider} {input.region} {input.version}, registered and bootstrapped"
        self.trail.step("succeeded", "done")
        await self.trail.record("provision", "succeeded", self.state.message)
        return ProvisionClusterResult(operation_id=self.state.operation_id, cluster=input.name, outcome="succeeded",
                                      created=self.state.created, bootstrapped=self.state.bootstrapped,
                                      message=self.state.message)
