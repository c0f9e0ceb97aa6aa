"""k3s and RKE2 clusters upgraded by their system-upgrade-controller (provider `suc`), reached as kubeconfig clusters
are (their credential_ref). The control plane is the server nodes (`node-role.kubernetes.io/control-plane`); each
node pool is the agents its pool label names. Regatta upgrades them by Rancher's own pattern: a Plan
`regatta-server` (one server at a time, cordoned), then a Plan per pool (`regatta-<pool>`: one agent at a time, its
`prepare` step waiting for the servers' Plan, drained through the eviction API with the upgrade's drain timeout, never
forced), on the distribution's channel for the minor or the exact release `node_images.suc` names.

A Job that fails (a budget held its drain to the end of the Job's deadline) is reported as a cloud reports a failed
node pool upgrade, naming the node, its pods and the budgets that hold them; the pool's other nodes are held (their
`plan.upgrade.cattle.io/<plan>` label set to `disabled`, the controller's own way to leave a node out) and the node
the Job left cordoned goes back into service. Pause holds the nodes not yet started the same way and resume lets them
go; abort holds them, lets the node in flight finish, then deletes the Plan (docs/cloud-conformance.md U1–U8).
"""

from __future__ import annotations

from typing import Any

from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from regatta.clouds.base import CloudError, ControlPlane, KubeEndpoint
from regatta.clouds.kubeconfig import POOL_LABELS, KubeconfigProvider, OwnHardwareProvider
from regatta.models import CloudOperation, ClusterRef, NodePool
from regatta.models.errors import ErrorType
from regatta.rules import own_hardware

PLANS = ("upgrade.cattle.io", "v1", own_hardware.SUC_NAMESPACE, "plans")
MERGE = "application/merge-patch+json"


class SystemUpgradeProvider(OwnHardwareProvider):
    NEW_POOL_NOTE = " (its machines are your own)"

    def __init__(self, *, sim_url: str | None = None, api_clients=None, credential_site: str | None = None):
        self.workload = KubeconfigProvider(sim_url=sim_url, api_clients=api_clients, credential_site=credential_site)
        self._api_clients = api_clients

    def _call(self, cluster: ClusterRef, what: str, call, *args, **kwargs) -> Any:
        try:
            return call(*args, **kwargs)
        except ApiException as error:
            said = own_hardware.api_message(error.body) or str(error.reason)
            if error.status == 404 and "plans" in what:
                raise CloudError(f"{cluster.name}: {what}: the cluster serves no upgrade.cattle.io Plans ({said}); install"
                                 " the system-upgrade-controller (its CRD and namespace system-upgrade) first",
                                 error_type=ErrorType.NOT_MANAGED, retryable=False) from None
            if error.status in (400, 403, 404, 422):
                raise CloudError(f"{cluster.name}: the cluster refused {what}: {said}", error_type=ErrorType.CLOUD_REFUSED,
                                 retryable=False) from None
            raise CloudError(f"{cluster.name}: {what}: {error.status} {said}", error_type=ErrorType.CLOUD_UNREACHABLE,
                             retryable=True) from None

    def _objects(self, cluster: ClusterRef) -> k8s.CustomObjectsApi:
        return k8s.CustomObjectsApi(self._api_clients(cluster))

    def _core(self, cluster: ClusterRef) -> k8s.CoreV1Api:
        return k8s.CoreV1Api(self._api_clients(cluster))

    def _nodes(self, cluster: ClusterRef) -> list[Any]:
        return self._call(cluster, "list nodes", self._core(cluster).list_node).items

    def _plan(self, cluster: ClusterRef, name: str) -> dict[str, Any] | None:
        try:
            return self._objects(cluster).get_namespaced_custom_object(*PLANS, name)
        except ApiException as error:
            if error.status == 404 and "plans" not in own_hardware.api_message(error.body):
                return None
            if error.status == 404:
                return None
            raise CloudError(f"{cluster.name}: read Plan {name}: {error.status} {own_hardware.api_message(error.body)}",
                             error_type=ErrorType.CLOUD_UNREACHABLE, retryable=True) from None

    @staticmethod
    def _pool_of(labels: dict[str, str]) -> tuple[str, str | None]:
        key = next((key for key in POOL_LABELS if key in labels), None)
        return (labels[key], key) if key else ("default", None)

    def _distribution(self, nodes: list[Any], cluster: ClusterRef) -> str:
        try:
            return own_hardware.distribution_of(n.status.node_info.kubelet_version for n in nodes)
        except ValueError as problem:
            raise CloudError(f"{cluster.name}: {problem}", error_type=ErrorType.NOT_MANAGED, retryable=False) from None

    def _selected(self, nodes: list[Any], plan: dict[str, Any]) -> list[Any]:
        selector = (plan.get("spec") or {}).get("nodeSelector") or {}
        return [n for n in nodes if own_hardware.selects(selector, n.metadata.labels or {})]

    # ------------------------------------------------------------------ reads

    def kube_endpoint(self, cluster: ClusterRef) -> KubeEndpoint:
        return self.workload.kube_endpoint(cluster)

    def kubeconfig(self, cluster: ClusterRef) -> dict[str, Any]:
        return self.workload.kubeconfig(cluster)

    def describe_control_plane(self, cluster: ClusterRef) -> ControlPlane:
        """The servers' oldest release is the control plane's; UPDATING while a server Plan is still applying."""
        servers = [n for n in self._nodes(cluster) if own_hardware.is_server(n.metadata.labels or {})]
        if not servers:
            raise CloudError(f"{cluster.name}: no node is labelled {own_hardware.CONTROL_PLANE_LABEL}=true: a k3s or RKE2"
                             " cluster's servers carry that label", error_type=ErrorType.NOT_MANAGED, retryable=False)
        version = min((own_hardware.minor_of(n.status.node_info.kubelet_version) for n in servers),
                      key=lambda v: tuple(int(p) for p in v.split(".")))
        plan = self._plan(cluster, own_hardware.SERVER_PLAN)
        busy = plan is not None and bool((plan.get("status") or {}).get("applying"))
        return ControlPlane(name=cluster.name, version=version, status="UPDATING" if busy else "ACTIVE")

    def list_node_pools(self, cluster: ClusterRef) -> list[NodePool]:
        """The agents, grouped by their pool label; the release they run is their `node_image`."""
        grouped: dict[str, list[Any]] = {}
        for node in self._nodes(cluster):
            labels = node.metadata.labels or {}
            if not own_hardware.is_server(labels):
                grouped.setdefault(self._pool_of(labels)[0], []).append(node)
        pools = []
        for name, members in sorted(grouped.items()):
            releases = sorted(n.status.node_info.kubelet_version for n in members)
            sizes = sorted((n.metadata.labels or {}).get("node.kubernetes.io/instance-type", "unknown") for n in members)
            pools.append(NodePool(name=name, version=min((own_hardware.minor_of(r) for r in releases),
                                                         key=lambda v: tuple(int(p) for p in v.split("."))),
                                  node_count=len(members), node_size=sizes[0], node_image=releases[0]))
        return pools

    # ------------------------------------------------------------------ changes

    def start_control_plane_upgrade(self, cluster: ClusterRef, *, version: str, request_token: str, force: bool = False,
                                    node_image: str | None = None) -> CloudOperation:
        return self._start(cluster, None, version, node_image, None, request_token, kind="control_plane_upgrade")

    def start_node_pool_upgrade(self, cluster: ClusterRef, *, node_pool: str, version: str, request_token: str,
                                node_image: str | None = None, launch_template_version: str | None = None,
                                drain_timeout_seconds: float | None = None) -> CloudOperation:
        return self._start(cluster, node_pool, version, node_image, drain_timeout_seconds, request_token,
                           kind="node_pool_upgrade")

    def _start(self, cluster: ClusterRef, node_pool: str | None, version: str, node_image: str | None,
               drain_timeout_seconds: float | None, request_token: str, *, kind: str) -> CloudOperation:
        """Write Regatta's Plan for the servers or the pool (made anew when it was held, stopped or its Job failed),
        with the pool's held nodes let go; a Plan already asked for is waited for (a retry after a crash)."""
        nodes = self._nodes(cluster)
        distribution = self._distribution(nodes, cluster)
        try:
            release = own_hardware.suc_release(version, node_image, distribution)
        except own_hardware.ReleaseRefused as refused:
            raise CloudError(str(refused), error_type=ErrorType.INVALID_NODE_IMAGE, retryable=False) from None
        pool_label = None
        if node_pool is not None:
            members = [n for n in nodes if not own_hardware.is_server(n.metadata.labels or {})
                       and self._pool_of(n.metadata.labels or {})[0] == node_pool]
            if not members:
                raise CloudError(f"{cluster.name} has no agent nodes in pool {node_pool}", error_type=ErrorType.CLOUD_REFUSED,
                                 retryable=False)
            pool_label = self._pool_of(members[0].metadata.labels or {})[1]
        selector = own_hardware.plan_selector(node_pool, pool_label, POOL_LABELS)
        name = own_hardware.plan_name(node_pool)
        operation = CloudOperation(id=f"suc:{name}:{version}", cluster=cluster.name, kind=kind, node_pool=node_pool)
        existing = self._plan(cluster, name)
        servers = self._plan(cluster, own_hardware.SERVER_PLAN) if node_pool is not None else None
        pinned = ((servers or {}).get("spec") or {}).get("version")
        if node_pool is not None and node_image is None and pinned and own_hardware.minor_of(pinned) == version:
            release = {"version": pinned}  # the agents on the servers' very release (what k3s-upgrade's prepare checks)
        wanted = own_hardware.plan(node_pool=node_pool, selector=selector, release=release, distribution=distribution,
                                   drain_timeout_seconds=drain_timeout_seconds, attempt=request_token,
                                   after_servers=servers is not None)
        if existing is not None and self._done(cluster, existing, version, nodes):
            self._pin(cluster, existing)
            return operation.model_copy(update={"status": "succeeded"})
        if existing is not None and (own_hardware.plan_failure(existing) or own_hardware.stopping(existing)
                                     or self._held(existing, nodes)):
            # started again after a failed Job, a hold or an abort: the Plan is made anew, its Jobs deleted first (the
            # controller would otherwise find a failed one again), and the nodes it held let go once it stands
            self._call(cluster, f"delete Plan {name}", self._objects(cluster).delete_namespaced_custom_object, *PLANS, name)
            batch = k8s.BatchV1Api(self._api_clients(cluster))
            for job in self._call(cluster, f"list Plan {name}'s Jobs", batch.list_namespaced_job, own_hardware.SUC_NAMESPACE,
                                  label_selector=f"upgrade.cattle.io/plan={name}").items:
                self._call(cluster, f"delete Job {job.metadata.name}", batch.delete_namespaced_job, job.metadata.name,
                           own_hardware.SUC_NAMESPACE, propagation_policy="Background")
            existing = None
        if existing is None:
            self._call(cluster, "create Plan", self._objects(cluster).create_namespaced_custom_object, *PLANS[:3],
                       PLANS[3], wanted)
            self._label(cluster, self._selected(nodes, wanted), name, only_value=own_hardware.DISABLED, value=None)
        elif existing.get("spec") != wanted["spec"]:  # another release for the same nodes: the controller's new hash
            self._call(cluster, f"change Plan {name}", self._objects(cluster).patch_namespaced_custom_object, *PLANS,
                       name, {"spec": {**wanted["spec"], **{k: None for k in existing.get("spec") or {}
                                                            if k not in wanted["spec"]}}}, _content_type=MERGE)
        return operation

    def _pin(self, cluster: ClusterRef, plan: dict[str, Any]) -> None:
        """A Plan done on a channel is pinned to the release it resolved: left on the channel, the controller would
        upgrade every node again when the channel moves, outside any window, without Regatta."""
        spec, latest = plan.get("spec") or {}, (plan.get("status") or {}).get("latestVersion")
        if spec.get("channel") and latest:
            self._call(cluster, f"pin Plan {plan['metadata']['name']}", self._objects(cluster).patch_namespaced_custom_object,
                       *PLANS, plan["metadata"]["name"], {"spec": {"channel": None,
                                                                   "version": own_hardware.release_of(latest)}},
                       _content_type=MERGE)

    @staticmethod
    def _named(nodes: list[Any], hostnames: list[str]) -> list[str]:
        """The controller lists the nodes applying by their `kubernetes.io/hostname` label: their names."""
        by_host = {(n.metadata.labels or {}).get("kubernetes.io/hostname", n.metadata.name): n.metadata.name for n in nodes}
        return [by_host.get(host, host) for host in hostnames]

    def _held(self, plan: dict[str, Any], nodes: list[Any]) -> bool:
        label = f"plan.upgrade.cattle.io/{plan['metadata']['name']}"
        return any((n.metadata.labels or {}).get(label) == own_hardware.DISABLED for n in self._selected(nodes, plan))

    def _done(self, cluster: ClusterRef, plan: dict[str, Any], target: str, nodes: list[Any]) -> bool:
        return own_hardware.plan_done(plan, [(n.metadata.name, n.metadata.labels or {}, n.status.node_info.kubelet_version)
                                             for n in self._selected(nodes, plan)], target)

    def _label(self, cluster: ClusterRef, nodes: list[Any], plan: str, *, only_value: str | None, value: str | None,
               skip: set[str] = frozenset()) -> list[str]:  # type: ignore[assignment]
        """Set (or take off) a node's `plan.upgrade.cattle.io/<plan>` label where it holds `only_value` (None: any
        value but the Plan's hash, which marks a node done)."""
        label = f"plan.upgrade.cattle.io/{plan}"
        changed = []
        for node in nodes:
            current = (node.metadata.labels or {}).get(label)
            if node.metadata.name in skip or (only_value is not None and current != only_value):
                continue
            self._call(cluster, f"label node {node.metadata.name}", self._core(cluster).patch_node, node.metadata.name,
                       {"metadata": {"labels": {label: value}}})
            changed.append(node.metadata.name)
        return changed

    def poll_operation(self, cluster: ClusterRef, operation: CloudOperation) -> CloudOperation:
        if operation.status != "in_progress":
            return operation
        _, name, target = operation.id.split(":", 2)
        plan = self._plan(cluster, name)
        if plan is None:
            return operation.model_copy(update={"status": "failed", "errors": [
                f"the Plan {name} is gone: deleted outside this upgrade; start the upgrade again"]})
        nodes = self._nodes(cluster)
        status = plan.get("status") or {}
        if self._done(cluster, plan, target, nodes):
            self._pin(cluster, plan)
            return operation.model_copy(update={"status": "succeeded"})
        if own_hardware.stopping(plan) and not status.get("applying"):
            # the Plan first: a node let go while it still stood would be picked up by it again
            self._call(cluster, f"delete Plan {name}", self._objects(cluster).delete_namespaced_custom_object, *PLANS, name)
            self._label(cluster, self._selected(nodes, plan), name, only_value=own_hardware.DISABLED, value=None)
            return operation.model_copy(update={"status": "stopped"})
        failure = own_hardware.plan_failure(plan)
        if failure is None:
            return operation
        return operation.model_copy(update={"status": "failed", "errors": self._report_failure(cluster, plan, nodes, failure)})

    def _report_failure(self, cluster: ClusterRef, plan: dict[str, Any], nodes: list[Any], failure: str) -> list[str]:
        """Say what holds the failed node (its pods, and the budgets that allow no disruption), hold the pool's
        other nodes, and put the node the Job left cordoned back into service."""
        name = plan["metadata"]["name"]
        failed = self._named(nodes, list((plan.get("status") or {}).get("applying") or []))
        lines = [f"PodEvictionFailure: {failure}"] if "evict" in failure or "Deadline" in failure else [failure]
        for node in failed:
            lines += self._what_holds(cluster, node)
        # every node not done is held, the failed one too (the controller would otherwise try it again unattended)
        held = self._label(cluster, self._selected(nodes, plan), name, only_value=None, value=own_hardware.DISABLED,
                           skip={n.metadata.name for n in nodes if (n.metadata.labels or {}).get(
                               f"plan.upgrade.cattle.io/{name}") == (plan.get("status") or {}).get("latestHash")})
        for node in failed:
            self._call(cluster, f"uncordon node {node}", self._core(cluster).patch_node, node, {"spec": {"unschedulable": False}})
        lines.append(f"Regatta held Plan {name}'s other nodes ({', '.join(held) or 'none left'}: label"
                     f" plan.upgrade.cattle.io/{name}=disabled) and put {', '.join(failed) or 'no node'} back into service;"
                     " start the upgrade again once the budget allows an eviction")
        return lines

    def _what_holds(self, cluster: ClusterRef, node: str) -> list[str]:
        pods = self._call(cluster, f"list pods on {node}", self._core(cluster).list_pod_for_all_namespaces,
                          field_selector=f"spec.nodeName={node}").items
        budgets = self._call(cluster, "list PodDisruptionBudgets", k8s.PolicyV1Api(self._api_clients(cluster))
                             .list_pod_disruption_budget_for_all_namespaces).items
        lines = []
        for budget in budgets:
            if (budget.status.disruptions_allowed or 0) > 0:
                continue
            match = (budget.spec.selector.match_labels or {}) if budget.spec.selector else {}
            held = [f"{p.metadata.namespace}/{p.metadata.name}" for p in pods
                    if p.metadata.namespace == budget.metadata.namespace and match
                    and all((p.metadata.labels or {}).get(k) == v for k, v in match.items())]
            if held:
                lines.append(f"node {node}: pods {', '.join(held)} are held by PodDisruptionBudget"
                             f" {budget.metadata.namespace}/{budget.metadata.name}, which allows 0 disruptions"
                             f" ({budget.status.current_healthy} healthy, {budget.status.desired_healthy} needed)")
        return lines

    def hold_rollout(self, cluster: ClusterRef, *, node_pool: str | None, hold: bool, stop: bool = False) -> str:
        """Pause: the Plan's nodes not yet started are labelled `disabled`; resume takes the label off. An abort also
        marks the Plan, which is deleted once the node in flight is done (poll_operation)."""
        name = own_hardware.plan_name(node_pool)
        plan = self._plan(cluster, name)
        if plan is None:
            return f"no Plan {name} to {'hold' if hold else 'let go'}"
        nodes = self._selected(self._nodes(cluster), plan)
        status = plan.get("status") or {}
        if hold:
            skip = set(self._named(nodes, list(status.get("applying") or []))) | {
                n.metadata.name for n in nodes if (n.metadata.labels or {}).get(
                    f"plan.upgrade.cattle.io/{name}") == status.get("latestHash")}
            held = self._label(cluster, nodes, name, only_value=None, value=own_hardware.DISABLED, skip=skip)
            # a node the controller began between the read and the labels is let go again (its Job must finish)
            now = self._plan(cluster, name) or plan
            started = set(self._named(nodes, list((now.get("status") or {}).get("applying") or []))) & set(held)
            if started:
                self._label(cluster, [n for n in nodes if n.metadata.name in started], name,
                            only_value=own_hardware.DISABLED, value=None)
                held = [n for n in held if n not in started]
        else:
            held = self._label(cluster, nodes, name, only_value=own_hardware.DISABLED, value=None)
        if stop:
            self._call(cluster, f"mark Plan {name}", self._objects(cluster).patch_namespaced_custom_object, *PLANS, name,
                       {"metadata": {"annotations": {own_hardware.STOPPING: "true"}}}, _content_type=MERGE)
            return (f"the system-upgrade-controller's Plan {name} is deleted once its node in flight is done; nodes"
                    f" {', '.join(held) or 'none'} stay on their release")
        return f"Plan {name}: nodes {', '.join(held) or 'none'} {'held (disabled)' if hold else 'let go'}"

    # ------------------------------------------------------------------ what Regatta does not do here

    def _refuse(self, cluster: ClusterRef, what: str) -> CloudError:
        return CloudError(f"cluster {cluster.name} is a k3s or RKE2 cluster on your own hardware; Regatta upgrades it"
                          f" through its system-upgrade-controller and cannot {what}", error_type=ErrorType.NOT_MANAGED,
                          retryable=False)
