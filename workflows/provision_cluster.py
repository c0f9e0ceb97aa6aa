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

from workflows.runbook import Runbook, parse_input

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
        ProvisionClusterInput,
        ProvisionClusterProgress,
        ProvisionClusterResult,
    )
    from regatta.rules import provisioning

EXAMPLE = ('{"name": "eks-team-a-use1", "provider": "eks", "region": "us-east-1", "version": "1.31",'
           ' "environment": "dev", "node_pools": [{"name": "general", "node_count": 3}]}')


@workflow.defn(name="ProvisionCluster")
class ProvisionCluster(Runbook):
    operation = "ProvisionCluster"

    @workflow.init
    def __init__(self, input: ProvisionClusterInput | dict) -> None:
        self.input, self.input_error = parse_input(ProvisionClusterInput, input, EXAMPLE)
        self.state = ProvisionClusterProgress(cluster=self.input.name)
        self.ref = None
        self.audit_seq = 0

    @property
    def cluster_name(self) -> str:
        return self.input.name

    @workflow.query
    def progress(self) -> ProvisionClusterProgress:
        return self.state

    # ------------------------------------------------------------------ steps

    async def _validate(self) -> None:
        self._step("validating", "checking the fleet rules")
        free = await self._call(Activity.CHECK_NAME_FREE, self.input.name, bool)
        problems = provisioning.fleet_rule_violations(
            name=self.input.name, provider=self.input.provider, region=self.input.region, version=self.input.version,
            pools=[(p.name, p.node_count) for p in self.input.node_pools], taken=not free,
        )
        if problems:
            raise ApplicationError("; ".join(problems), type="FleetRuleViolation", non_retryable=True)

    async def _create(self, what: str, start: Activity, request) -> None:
        """Note the resource as created, ask for it, and wait until the cloud says it exists."""
        self.state.created.append(what)
        await self._cloud_operation(start, request)

    async def _build(self) -> None:
        self._step("creating", f"creating the {self.input.provider} control plane {self.input.name} at {self.input.version}")
        await self._create("cluster", Activity.CREATE_CLUSTER, CreateCluster(
            cluster=self.ref, version=self.input.version, labels=self.input.labels, request_token=self._token("cluster")))
        for pool in self.input.node_pools:
            self.state.step = f"creating node pool {pool.name} ({pool.node_count} × {pool.node_size})"
            spec = NodePool(name=pool.name, version=self.input.version, node_count=pool.node_count,
                            node_size=pool.node_size, labels=pool.labels)
            await self._create(f"node_pool:{pool.name}", Activity.CREATE_NODE_POOL, CreateNodePool(
                cluster=self.ref, node_pool=spec, request_token=self._token(f"pool-{pool.name}")))
        nodes = sum(p.node_count for p in self.input.node_pools)
        await self._health_gate(f"creating {nodes} nodes", timeout=self.input.ready_timeout_seconds,
                                failure_type="ClusterNotReady", min_ready_nodes=nodes)

        self._step("bootstrapping", "namespaces, RBAC and the baseline policy bundle")
        self.state.bootstrapped = await self._call(Activity.BOOTSTRAP_CLUSTER, BootstrapCluster(
            cluster=self.ref, namespaces=self.input.namespaces, admin_group=self.input.admin_group), list[str])

        self._step("registering", "registering the cluster in the inventory")
        self.state.created.append("inventory")
        await self._call(Activity.REGISTER_CLUSTER, self._record(), None)

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
        self._step("compensating", "deleting what this operation created")
        left = []
        for what in reversed(self.state.created):
            self.state.step = f"compensating: removing {what}"
            try:
                if what == "inventory":
                    await self._call(Activity.DEREGISTER_OWN_REGISTRATION, self._record(), bool)
                elif what == "cluster":
                    await self._cloud_operation(Activity.DELETE_CLUSTER, DeleteCluster(
                        cluster=self.ref, request_token=self._token("delete-cluster")))
                else:
                    pool = what.removeprefix("node_pool:")
                    await self._cloud_operation(Activity.DELETE_NODE_POOL, DeleteNodePool(
                        cluster=self.ref, node_pool=pool, request_token=self._token(f"delete-{pool}")))
            except ActivityError as error:
                left.append(f"{what} ({error.cause})")
        return left

    # ------------------------------------------------------------------ the runbook

    @workflow.run
    async def run(self, input: ProvisionClusterInput | dict) -> ProvisionClusterResult:
        input = self.input
        self._check_start()
        self.ref = input.ref
        self._tag(input.environment)
        await self._audit("provision", "started",
                          f"{input.provider} {input.region} {input.version}, pools "
                          + ", ".join(f"{p.name}×{p.node_count}" for p in input.node_pools))
        try:
            await self._validate()
            await self._build()
        except (ActivityError, ApplicationError) as failure:
            cause = failure.cause if isinstance(failure, ActivityError) and failure.cause else failure
            reason = getattr(cause, "message", None) or str(cause)
            error_type = getattr(cause, "type", None) or "ProvisionFailed"
            where, refused = self.state.step, self.state.phase == "validating"
            left = await self._compensate() if self.state.created else []
            self.state.message = f"{'refused' if refused else 'failed'} during {where}: {reason}"
            if self.state.created:
                self.state.message += (f". Could not remove: {'; '.join(left)} — delete them by hand" if left
                                       else ". Everything it had created was deleted")
            self._step("failed", where)
            await self._audit("provision", "refused" if refused else "failed", self.state.message)
            raise ApplicationError(self.state.message, type=error_type, non_retryable=True) from None

        self.state.message = f"{input.name} is up: {input.provider} {input.region} {input.version}, registered and bootstrapped"
        self._step("succeeded", "done")
        await self._audit("provision", "succeeded", self.state.message)
        return ProvisionClusterResult(operation_id=self.state.operation_id, cluster=input.name, outcome="succeeded",
                                      created=self.state.created, bootstrapped=self.state.bootstrapped,
                                      message=self.state.message)
