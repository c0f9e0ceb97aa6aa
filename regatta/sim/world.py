"""The simulated fleet: clusters, nodes, pods, deployments, PDBs, cloud operations, and the
invariants a real fleet must never break.

The HTTP layer (`regatta/sim/server.py`) translates the Kubernetes and cloud wire formats
into calls on `World`; nothing here knows about HTTP. One asyncio loop owns the world, so
no locking is needed: every method runs to completion between awaits.

Time is lazy where it can be: a pod or node records when it becomes Ready and is Ready once
the clock passes that instant, so thousands of them cost no timers. Cloud operations are
asyncio tasks that sleep scaled simulated seconds between their steps.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import math
import random
import re
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from regatta.formats.fleet_file import DEFAULT_STEP_SECONDS, AccountsSpec, ClusterSpec, FleetSpec, NodePoolSpec
from regatta.sim import addresses, arithmetic, eks_addons, policy_engines

# Simulated seconds each step takes before the time-scale factor is applied.
CONTROL_PLANE_UPGRADE_SECONDS = DEFAULT_STEP_SECONDS["control_plane_upgrade_seconds"]
ADDON_UPDATE_SECONDS = 60.0
# How long a token each cloud hands out is accepted (simulated seconds): EKS's aws-iam-authenticator
# token 15 minutes after its X-Amz-Date, a Google OAuth or Entra access token about an hour.
TOKEN_LIFETIMES = {"eks": 900.0, "gke": 3600.0, "aks": 3600.0, "kubeconfig": 3600.0}
MIN_TOKEN_SECONDS = 30.0
REQUEST_LOG_SIZE = 5000  # at time scales near 0 a token still outlives the request that fetched it
# The AKS server application: the audience of every Entra token an AKS API server takes.
AKS_SERVER_APPLICATION = "6dae42f8-4368-4678-94ff-3960e28e3630"
CLUSTER_CREATE_SECONDS = 600.0
CLUSTER_DELETE_SECONDS = 300.0
NODE_BOOT_SECONDS = DEFAULT_STEP_SECONDS["node_boot_seconds"]
NODE_READY_BUDGET_SECONDS = 600.0
POD_START_SECONDS = DEFAULT_STEP_SECONDS["pod_start_seconds"]
NODE_TERMINATE_SECONDS = DEFAULT_STEP_SECONDS["node_terminate_seconds"]
EVICTION_RETRY_SECONDS = 5.0
HELD_GAP_SECONDS = 60.0  # refused evictions of a node further apart than this are two holds (a drain retries every 5 s)
EVICTION_BUDGET_SECONDS = 900.0  # EKS gives up on a drain after 15 minutes unless forced
GKE_PDB_TIMEOUT_SECONDS = 3600.0  # GKE honours PodDisruptionBudgets for up to an hour per node, then goes on without
RESTORE_SECONDS = 120.0  # a Velero restore of a namespace set
REGION_TIMEOUT_SECONDS = 30.0  # how long a request into a cut-off region hangs before the gateway gives up
POOL_CAPACITY = {"t3.small": 11, "t3.medium": 17, "m5.large": 29, "m5.xlarge": 58, "m5.2xlarge": 58, "m6i.large": 29, "c5.xlarge": 58}
# What the kubelet offers pods on each machine type, (CPU millicores, memory MiB): the machine's
# size less what the system and kubelet reserve, as the clouds' own tables give it.
NODE_ALLOCATABLE = {"t3.small": (1930, 1450), "t3.medium": (1930, 3350), "m5.large": (1930, 7100),
                    "m5.xlarge": (3920, 14500), "m5.2xlarge": (7910, 29800), "m6i.large": (1930, 7100),
                    "c5.xlarge": (3920, 6600), "e2-standard-4": (3920, 13000), "e2-standard-8": (7910, 28000),
                    "Standard_D4s_v5": (3860, 12600), "Standard_D8s_v5": (7820, 27500)}
DEFAULT_ALLOCATABLE = (1930, 7100)
SYSTEM_NAMESPACES = ("kube-system",)
# AKS ships one node image a week whatever the Kubernetes version, and upgrades only to its newest.
AKS_NEWEST_NODE_IMAGE = "AKSUbuntu-2204gen2containerd-202611.20.0"


def newest_node_image(provider: str, version: str) -> str:
    """The image a cloud gives nodes of `version` when none is asked for: EKS's AMI release
    version, GKE's full node version, AKS's node image version (none on your own hardware)."""
    if provider == "eks":
        return f"{version}.2-20261101"
    if provider == "gke":
        return f"{version}.5-gke.1200"
    if provider == "aks":
        return AKS_NEWEST_NODE_IMAGE
    return ""


class SimError(Exception):
    """An API refusal: HTTP status, a Kubernetes reason / AWS error code, and a message."""

    def __init__(self, status: int, reason: str, message: str, *, causes: list[dict] | None = None, delay: float = 0.0):
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.message = message
        self.causes = causes or []
        self.delay = delay  # seconds the server holds the request before answering (a timeout)


# --------------------------------------------------------------------------- state


@dataclass
class Node:
    name: str
    pool: str
    version: str  # kubelet, "v1.30.4"
    size: str
    capacity: int
    ready_at: float
    zone: str
    labels: dict[str, str]
    unschedulable: bool = False
    created: float = field(default_factory=time.time)
    image: str = ""  # the node image it booted from
    cpu_m: int = DEFAULT_ALLOCATABLE[0]  # allocatable CPU, millicores
    memory_mi: int = DEFAULT_ALLOCATABLE[1]  # allocatable memory, MiB
    # The addresses it holds (regatta/sim/addresses.py): an EKS node in `subnet`, a GKE node its Pod block.
    subnet: str = ""
    addresses: int = 0

    def ready(self, now: float) -> bool:
        return now >= self.ready_at


@dataclass
class Pod:
    name: str
    namespace: str
    labels: dict[str, str]
    owner: str | None  # deployment name (or stateful set's: owner_kind says which)
    node: str | None
    ready_at: float
    uid: str
    created: float = field(default_factory=time.time)
    cpu_m: int = 0  # what its containers request
    memory_mi: int = 0
    volumes: list[dict] = field(default_factory=list)  # as the pod spec gives them (emptyDir data goes with the pod)
    owner_kind: str = "ReplicaSet"  # what its ownerReference names: a Deployment's ReplicaSet, or a StatefulSet
    ready_seconds: float | None = None  # placed to Ready (None: POD_START_SECONDS)
    started: float | None = None  # wall-clock time it was placed on a node (status.startTime)
    never_ready: bool = False  # a crash loop or a failing readiness probe: placed, running, never Ready

    def ready(self, now: float) -> bool:
        return self.node is not None and now >= self.ready_at and not self.never_ready


@dataclass
class Deployment:
    namespace: str
    name: str
    replicas: int
    labels: dict[str, str]
    annotations: dict[str, str] = field(default_factory=dict)
    metadata_labels: dict[str, str] = field(default_factory=dict)  # on the Deployment itself (e.g. velero.io/restore-name)
    cpu_m: int = 0  # each pod's requests, summed over its containers
    memory_mi: int = 0
    containers: list[dict] = field(default_factory=list)  # the pod template's containers, as applied (none: one made up)
    volumes: list[dict] = field(default_factory=list)  # the pod template's volumes
    kind: Literal["Deployment", "StatefulSet"] = "Deployment"  # a StatefulSet's pods are NAME-0, NAME-1, ...
    ready_seconds: float | None = None  # how long its pods take from placed to Ready (None: POD_START_SECONDS)
    unready: int = 0  # of its pods, how many crash-loop: a replacement of one crash-loops too


@dataclass
class Pdb:
    namespace: str
    name: str
    selector: dict[str, str] | None  # matchLabels; None: a budget with no selector, which selects no pod
    min_available: int | str | None
    max_unavailable: int | str | None
    blocked: bool = False  # fault: the application behind it reports unhealthy, so nothing may go
    expressions: list[dict] = field(default_factory=list)  # its selector's matchExpressions
    labels: dict[str, str] = field(default_factory=dict)  # on the budget itself (a bundle's label)
    annotations: dict[str, str] = field(default_factory=dict)


@dataclass
class NodePool:
    name: str
    version: str  # "1.30"
    size: str
    desired: int
    labels: dict[str, str]
    image: str = ""  # the node image new nodes of the pool boot from
    # Where its nodes live and who they are (EKS subnets and node role, an AKS subnet), and their taints.
    subnets: list[str] = field(default_factory=list)
    node_role: str | None = None
    taints: list[dict[str, str]] = field(default_factory=list)
    # The pool's other settings in its cloud's own words, as it was created with them and as the cloud
    # describes them back (EKS amiType, capacityType, launchTemplate; GKE config, autoscaling; AKS mode, osSKU).
    settings: dict[str, Any] = field(default_factory=dict)
    kubelet: str | None = None  # the minor its nodes' kubelet runs when the image decides it (an EKS custom AMI)
    allocatable: tuple[int, int, int] | None = None  # each node's (CPU millicores, memory MiB, pods); None: by its size
    status: str = "ACTIVE"
    token: str | None = None
    health_issues: list[dict] = field(default_factory=list)
    created: float = field(default_factory=time.time)
    modified: float = field(default_factory=time.time)
    operation: Update | None = None  # the create or delete in flight, for clouds that report operations


@dataclass
class Update:
    id: str
    cluster: str
    nodegroup: str | None
    type: str
    params: list[dict]
    status: str = "InProgress"
    addon: str | None = None  # the EKS managed add-on an AddonUpdate moves
    outside: bool = False  # started by the cloud's own automation or someone else, not through the API (/sim/busy)
    errors: list[dict] = field(default_factory=list)
    created: float = field(default_factory=time.time)
    finished: float | None = None  # wall-clock time it succeeded or failed (for a benchmark's ideal makespan)
    created_at: datetime | None = None  # on the fleet's calendar: what the cloud's API says (EKS createdAt)

    def __setattr__(self, name: str, value: object) -> None:
        super().__setattr__(name, value)
        if name == "status" and value in ("Successful", "Failed") and getattr(self, "finished", None) is None:
            super().__setattr__("finished", time.time())


@dataclass
class Faults:
    """What can go wrong on one cluster, set from a scenario or at run time (POST /sim/faults)."""

    error_rate: float = 0.0  # share of requests answered with one of error_codes
    error_codes: tuple[int, ...] = (429, 500, 503)
    fail_times: int = 0  # the next N requests fail with 500, then all succeed
    fail_operation: str | None = None  # limit fail_times/error_rate to one operation name
    api: Literal["cloud", "kube", "any"] = "any"
    hang: bool = False  # cloud operations never finish
    node_never_ready: bool = False  # nodes created from now on never become Ready
    blocking_pdbs: tuple[str, ...] = ()  # "namespace/name" of PDBs that refuse every eviction
    unreachable: bool = False  # every request fails with 503, as if the region were cut off
    fail_status: int = 500  # what fail_times answers with: 5xx is retried, 400/403 is a permanent refusal
    job_failure: str | None = None  # Jobs created from now on fail with this message (a smoke test that finds trouble)


@dataclass
class Cluster:
    name: str
    provider: str
    region: str
    labels: dict[str, str]
    version: str  # control plane, "1.30"
    time_scale: float | None
    status: str = "ACTIVE"
    site: str | None = None  # a private network's: only its agent is handed the cluster's credentials
    settings: dict[str, Any] = field(default_factory=dict)  # its other settings in its cloud's own words
    addons: dict[str, str] = field(default_factory=dict)  # EKS managed add-on → the version it runs
    insights: list[dict[str, Any]] = field(default_factory=list)  # EKS upgrade insights (the fleet file's)
    pools: dict[str, NodePool] = field(default_factory=dict)
    nodes: dict[str, Node] = field(default_factory=dict)
    pods: dict[tuple[str, str], Pod] = field(default_factory=dict)
    deployments: dict[tuple[str, str], Deployment] = field(default_factory=dict)
    stateful_sets: dict[tuple[str, str], Deployment] = field(default_factory=dict)  # kind StatefulSet
    kube_calls: collections.Counter[str] = field(default_factory=collections.Counter)  # API server requests, by operation
    # Drains a budget held, by node: the budgets and pods that refused an eviction, when first and last (monotonic),
    # how many times (a rehearsal reads them; GET /sim/report says them).
    held_drains: dict[str, dict[str, Any]] = field(default_factory=dict)
    pdbs: dict[tuple[str, str], Pdb] = field(default_factory=dict)
    # what every cluster has from its start, and velero's (every simulated cluster runs Velero)
    namespaces: set[str] = field(default_factory=lambda: {"default", "kube-system", "kube-public", "kube-node-lease",
                                                          "velero"})
    namespace_labels: dict[str, dict[str, str]] = field(default_factory=dict)
    namespace_annotations: dict[str, dict[str, str]] = field(default_factory=dict)
    # Any other kind (RBAC, policies, config): (api group/version, plural, namespace, name) → object
    objects: dict[tuple[str, str, str, str], dict] = field(default_factory=dict)
    # Every write to `objects` in order (resourceVersion, ADDED|MODIFIED|DELETED, key, object): what watches read.
    object_log: list[tuple[int, str, tuple[str, str, str, str], dict]] = field(default_factory=list)
    updates: dict[str, Update] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)  # clientRequestToken → update id
    faults: Faults = field(default_factory=Faults)
    drain_episodes: dict[str, int] = field(default_factory=dict)
    # The API server's apiserver_requested_deprecated_apis gauge: (group, version, resource, subresource,
    # removed_release) of every deprecated API requested since the API server started (regatta/sim/api_versions.py).
    requested_deprecated: set[tuple[str, str, str, str, str]] = field(default_factory=set)
    draining: set[str] = field(default_factory=set)
    # The minor an in-place upgrade of the control plane came from, and when (the fleet's calendar) the control plane's
    # version last changed: what an EKS version rollback returns to, and the window it is allowed in. None for a
    # cluster created at its version, or just rolled back (one rollback in a row).
    previous_version: str | None = None
    version_changed_at: datetime | None = None
    resource_version: int = 1
    created: float = field(default_factory=time.time)
    seq: itertools.count = field(default_factory=lambda: itertools.count(1))

    def pool_nodes(self, pool: str) -> list[Node]:
        return sorted((n for n in self.nodes.values() if n.pool == pool), key=lambda n: n.name)

    def pods_on(self, node: str) -> list[Pod]:
        return [pod for pod in self.pods.values() if pod.node == node]

    def pool_in_flight(self, pool: str) -> Update | None:
        return next(
            (u for u in self.updates.values() if u.nodegroup == pool and u.status == "InProgress"), None
        )


def _covers(pdb: Pdb, labels: dict[str, str]) -> bool:
    return arithmetic.selects(pdb.selector, pdb.expressions, labels)



def _gke_seeded_locations(region: str, nodes: int) -> list[str]:
    """Where a fleet file's GKE pool lives when it does not say: GKE puts as many nodes in each of a pool's zones,
    so a regional cluster's pool is spread over three zones when its count allows it, else pinned to one (a
    pool's own node locations, as `gcloud container node-pools create --node-locations` makes)."""
    if re.fullmatch(r"[a-z]+-[a-z]+\d+-[a-z]", region):
        return [region]
    return [f"{region}-{zone}" for zone in "abc"] if nodes and nodes % 3 == 0 else [f"{region}-a"]

def _allocatable(pool: NodePoolSpec) -> tuple[int, int, int] | None:
    """A fleet file pool's own allocatable, each part it leaves out taken from the table for its machine type."""
    given = pool.allocatable
    if given is None:
        return None
    cpu, memory = NODE_ALLOCATABLE.get(pool.node_size, DEFAULT_ALLOCATABLE)
    if given.cpu is not None:
        cpu = math.ceil(arithmetic.quantity(given.cpu) * 1000 - 1e-9)
    if given.memory is not None:
        memory = math.ceil(arithmetic.quantity(given.memory) / 2**20 - 1e-9)
    return cpu, memory, given.pods if given.pods is not None else POOL_CAPACITY.get(pool.node_size, 110)


class World:
    """The whole simulated fleet and the record of every invariant it saw broken."""

    def __init__(self, *, time_scale: float = 1.0, seed: int = 7):
        self.time_scale = time_scale
        self.clusters: dict[str, Cluster] = {}
        self.pdb_violations: list[dict] = []
        self.skew_violations: list[dict] = []
        self.double_drains: list[dict] = []
        self.pods_deleted: list[dict] = []  # every pod DELETE through an API server: bypasses the budgets
        # Faults by cluster name, so a test can arm them before the cluster exists (provisioning).
        self.faults: dict[str, Faults] = {}
        # Every operation ever started, by id: it stays pollable after its cluster is deleted.
        self.updates: dict[str, Update] = {}
        # Backups outlive their clusters, as object storage does: cluster → backup name → snapshot.
        # Every cluster's Velero shares one bucket, so any cluster lists every backup (that is
        # what lets a standby restore the primary's workloads while the primary's region is down).
        self.backups: dict[str, dict[str, dict]] = {}
        # Regions cut off from the world: every API of every cluster in them times out.
        self.unreachable_regions: set[str] = set()
        # The traffic manager: service → {"weights": {cluster: weight}, "changes": [...]}.
        self.traffic: dict[str, dict] = {}
        # The fleet's calendar clock runs this far ahead of the wall clock: a test or a demo moves
        # it to open a maintenance window or end a freeze without waiting for one.
        self.clock_offset_seconds = 0.0
        # The bearer token every simulated API server demands, random per run: what `aws eks
        # get-token` or `az aks get-credentials` would hand out. The tests look for it in every
        # workflow history and must not find it (DESIGN rule 1).
        self.api_token = f"simtok-{secrets.token_hex(16)}"
        # Each site's clusters take their own token, handed only to that site's agent.
        self.site_tokens: dict[str, str] = {}
        # Tokens handed out that expire: token → (site, audience, monotonic expiry), and their lifetime if a
        # test sets one (None: each cloud's own, scaled).
        self.issued_tokens: dict[str, tuple[str | None, str | None, float]] = {}
        self.tokens_issued = 0  # how many tokens that expire were ever handed out
        # Service account tokens from the TokenRequest API (regatta/sim/kube_access.py): token → the cluster, the
        # account's namespace, name and uid, and the wall-clock expiry. Bound to the account: once it is deleted
        # (or made again, with another uid) its tokens are refused.
        self.service_account_tokens: dict[str, tuple[str, str, str, str, float]] = {}
        # Google service accounts' keys (regatta/sim/google_oauth.py): (email, key id) → the public key's PEM; and the
        # access tokens the token endpoint issued: token → (email, expiry).
        self.google_service_account_keys: dict[tuple[str, str], str] = {}
        self.google_tokens: dict[str, tuple[str, float]] = {}
        # The secrets stores the simulator stands in for (regatta/sim/secret_stores.py): Google Secret Manager's
        # versions by secret name, and Vault KV v2's versions by (mount, path) with the run's root token.
        self.google_secrets: dict[str, list[str]] = {}
        self.vault_secrets: dict[tuple[str, str], list[tuple[dict, float]]] = {}
        self.vault_root_token = f"hvs.sim{secrets.token_urlsafe(18)}"
        self.keyvault_secrets: dict[tuple[str, str], list[tuple[str, str, float]]] = {}  # (vault, name) → versions
        # Entra applications and the tokens the client-credentials flow gave them (regatta/sim/entra.py).
        self.entra_applications: dict[tuple[str, str], str] = {}
        self.entra_app_tokens: dict[str, tuple[str, str, float]] = {}
        # The last cloud requests as they arrived (regatta/sim/server.py's CloudRequestLog).
        self.request_log: collections.deque[dict] = collections.deque(maxlen=REQUEST_LOG_SIZE)
        # Every cloud request that may change something (not GET or HEAD), all of them, with the status
        # it was answered: what a count of "asked twice" reads, however long the run (they are few).
        self.cloud_changes: list[dict] = []
        self.ec2_denied = False  # EC2 refuses DescribeSubnets (UnauthorizedOperation): a role without the permission
        self.token_lifetime_seconds: float | None = None
        # A cloud account's request-rate limit (requests in any one second) and what was refused over it.
        self.cloud_rate_limits: dict[str, float] = {}
        self.throttled_requests: dict[str, int] = {}
        self._cloud_buckets: dict[str, tuple[float, float]] = {}  # provider → (tokens left, when counted)
        self._cloud_bursts: dict[str, float] = {}  # provider → the bucket's size
        # Where the clusters' API servers answer over HTTPS, and the per-run CA that signed their
        # certificate (base64 PEM, as EKS and GKE hand out certificate-authority-data): set by the
        # listeners once the TLS port is bound (regatta/sim/server.py).
        self.kube_url: str | None = None
        self.accounts = AccountsSpec()  # what the simulated cloud accounts have (the fleet file's `accounts`)
        # How long each provider's steps take where a fleet file says (a twin's calibration): provider → step → seconds.
        self.timings: dict[str, dict[str, float]] = {}
        self.ca_data: str | None = None
        self.random = random.Random(seed)
        self._tasks: set[asyncio.Task] = set()
        self._uids = itertools.count(1)

    # ------------------------------------------------------------------ clock

    def now(self) -> float:
        return time.monotonic()

    def calendar_now(self) -> datetime:
        """What time it is for the simulated fleet: maintenance windows and freezes are read against this."""
        return datetime.now(UTC) + timedelta(seconds=self.clock_offset_seconds)

    def set_cloud_rate_limit(self, provider: str, requests_per_second: float | None, *, burst: float | None = None) -> None:
        if requests_per_second is None:
            self.cloud_rate_limits.pop(provider, None)
            self._cloud_bursts.pop(provider, None)
        else:
            self.cloud_rate_limits[provider] = requests_per_second
            self._cloud_bursts[provider] = burst or requests_per_second
        self.throttled_requests.pop(provider, None)
        self._cloud_buckets.pop(provider, None)

    def admit_cloud_request(self, provider: str) -> bool:
        """Whether one more request to `provider`'s API fits under its account's limit; False (and
        counted) when it does not. Throttled as AWS documents its API throttling: a token bucket
        refilled at the limit per second, holding at most the burst (one second's worth unless told)."""
        limit = self.cloud_rate_limits.get(provider)
        if limit is None:
            return True
        burst = self._cloud_bursts.get(provider, limit)
        now = time.monotonic()
        tokens, since = self._cloud_buckets.get(provider, (burst, now))
        tokens = min(burst, tokens + (now - since) * limit)
        if tokens < 1:
            self._cloud_buckets[provider] = (tokens, now)
            self.throttled_requests[provider] = self.throttled_requests.get(provider, 0) + 1
            return False
        self._cloud_buckets[provider] = (tokens - 1, now)
        return True

    def token_for(self, cluster: Cluster) -> str:
        """The lasting token the cluster's API server takes (the run's, or its site's own): what a kubeconfig
        handed to a person carries, standing in for the exec plugin that renews a real cloud's token."""
        if cluster.site is None:
            return self.api_token
        if cluster.site not in self.site_tokens:
            self.site_tokens[cluster.site] = f"simtok-{cluster.site}-{secrets.token_hex(16)}"
        return self.site_tokens[cluster.site]

    def token_lifetime(self, cluster: Cluster) -> float:
        """Seconds a token handed out for the cluster is accepted: its cloud's own lifetime (EKS 15 minutes,
        a Google or Entra access token an hour), scaled like every other delay, never under a floor."""
        if self.token_lifetime_seconds is not None:
            return self.token_lifetime_seconds
        return max(MIN_TOKEN_SECONDS, self.scaled(cluster, TOKEN_LIFETIMES.get(cluster.provider, 3600.0)))

    def issue_token(self, cluster: Cluster, *, audience: str | None = None) -> tuple[str, float]:
        """A token for the cluster's API server (its site's, if it has one) that expires: (token, expiry as epoch
        seconds). With `audience`, an Entra access token for that application."""
        now = time.monotonic()
        self.issued_tokens = {t: grant for t, grant in self.issued_tokens.items() if grant[2] > now}
        lifetime = self.token_lifetime(cluster)
        token = f"simtok-{'entra-' if audience else ''}{secrets.token_hex(16)}"
        self.issued_tokens[token] = (cluster.site, audience, now + lifetime)
        self.tokens_issued += 1
        return token, time.time() + lifetime

    def service_account_of(self, cluster: Cluster, token: str) -> tuple[str, str] | None:
        """The (namespace, name) of the live service account a TokenRequest token of this cluster stands for;
        None when it is not one, has expired, or its account is gone or was made again."""
        bound = self.service_account_tokens.get(token)
        if bound is None or bound[0] != cluster.name or bound[4] <= time.time():
            return None
        _, namespace, name, uid, _ = bound
        account = cluster.objects.get(("v1", "serviceaccounts", namespace, name))
        if account is None or (account.get("metadata") or {}).get("uid") != uid:
            return None
        return namespace, name

    def accepts(self, cluster: Cluster, authorization: str | None) -> bool:
        """Whether the cluster's API server takes this Authorization header: its lasting token, or a token
        handed out for it (or for its cloud's API server application) that has not expired, or a live service
        account's token (whose requests RBAC then judges: regatta/sim/kube_rbac.py)."""
        if not authorization or not authorization.startswith("Bearer "):
            return False
        token = authorization.removeprefix("Bearer ")
        if token == self.token_for(cluster):
            return True
        if token.startswith("simsa-"):
            return self.service_account_of(cluster, token) is not None
        application = self.entra_app_tokens.get(token)  # an Entra application's token for the AKS server application
        if application is not None:
            return (application[2] > time.time() and application[1] == AKS_SERVER_APPLICATION and cluster.provider == "aks"
                    and bool((cluster.settings.get("aadProfile") or {}).get("managed")))
        grant = self.issued_tokens.get(token)
        if grant is None or grant[0] != cluster.site or grant[2] <= time.monotonic():
            return False
        audience = grant[1]
        return audience is None or (cluster.provider == "aks" and audience == AKS_SERVER_APPLICATION
                                    and bool((cluster.settings.get("aadProfile") or {}).get("managed")))

    def revoke_tokens(self) -> int:
        """Every token handed out stops being accepted at once (a rotated signing key): how many there were."""
        revoked = len(self.issued_tokens)
        self.issued_tokens.clear()
        return revoked

    def scaled(self, cluster: Cluster, seconds: float) -> float:
        scale = cluster.time_scale if cluster.time_scale is not None else self.time_scale
        return seconds * scale

    def step_seconds(self, cluster: Cluster, step: str, default: float) -> float:
        """How long `step` takes on the cluster's cloud before the time scale: the fleet file's timings for that
        provider (`control_plane_upgrade_seconds`, `node_boot_seconds`, ...) or the default."""
        return self.timings.get(cluster.provider, {}).get(step, default)

    async def pause(self, cluster: Cluster, seconds: float) -> None:
        # Even at time scale 0 yield to the loop, so API calls interleave with operations
        # the way they do against a real cloud.
        await asyncio.sleep(self.scaled(cluster, seconds))

    # ------------------------------------------------------------------ loading

    def _default_subnets(self, provider: str) -> list[str]:
        return {"eks": self.accounts.eks.subnets[:2], "aks": self.accounts.aks.subnets[:1]}.get(provider, [])

    def check_account(self, provider: str, *, subnets: Sequence[str] = (), node_role: str | None = None,
                      cluster_role: str | None = None, size: str | None = None, network: str | None = None,
                      subnetwork: str | None = None) -> None:
        """Refuse what the simulated account lacks, in the words and error code of that cloud."""
        if provider == "eks":
            account = self.accounts.eks
            if cluster_role is not None and cluster_role not in account.cluster_roles:
                raise SimError(400, "InvalidParameterException", f"Role with arn: {cluster_role}, could not be assumed"
                               " because it does not exist or the trusted entity is not correct")
            if node_role is not None and node_role not in account.node_roles:
                raise SimError(400, "InvalidParameterException", f"The provided role {node_role} does not exist or is not"
                               " a valid role for a node group")
            unknown = [s for s in subnets if s not in account.subnets]
            if unknown:
                raise SimError(400, "InvalidParameterException", f"The subnet ID '{unknown[0]}' does not exist"
                               f" (Service: AmazonEC2; Status Code: 400; Error Code: InvalidSubnetID.NotFound)")
            if size is not None and size not in account.instance_types:
                raise SimError(400, "InvalidParameterException", f"Instance type {size} is not supported")
        elif provider == "gke":
            networks = self.accounts.gke.networks
            if network is not None and network not in networks:
                raise SimError(400, "InvalidParameterException", f'Network "{network}" does not exist.')
            if subnetwork is not None and subnetwork not in networks.get(network or "default", []):
                raise SimError(400, "InvalidParameterException", f'Subnetwork "{subnetwork}" does not exist in network'
                               f' "{network or "default"}".')
            if size is not None and size not in self.accounts.gke.machine_types:
                raise SimError(400, "InvalidParameterException", f'Invalid machine type "{size}": it does not exist in'
                               " this project's zone")
        elif provider == "aks":
            unknown = [s for s in subnets if s not in self.accounts.aks.subnets]
            if unknown:
                raise SimError(400, "InvalidParameter", f"Subnet {unknown[0]} referenced by the agent pool was not found")
            if size is not None and size not in self.accounts.aks.vm_sizes:
                raise SimError(400, "InvalidParameter", f"The value {size} provided for the VM size of the agent pool is"
                               " not allowed in this subscription")

    def load(self, fleet: FleetSpec, *, replace: bool = False) -> list[str]:
        self.accounts = fleet.accounts
        self.timings = {provider: timings.model_dump(exclude_none=True) for provider, timings in fleet.timings.items()}
        if replace:
            self.clusters.clear()
        for spec in fleet.clusters:
            before = self.clusters.get(spec.name)
            self.clusters[spec.name] = self._build(spec)
            self.clusters[spec.name].faults = self.faults.setdefault(spec.name, Faults())
            if spec.manifests:  # applied through the object store's own rules (kube_objects imports this module)
                from regatta.sim.kube_objects import apply_at_load

                try:
                    for manifest in spec.manifests:
                        apply_at_load(self, self.clusters[spec.name], manifest)
                except SimError:  # a cluster whose objects cannot be is not loaded half; one it replaced stays
                    if before is None:
                        del self.clusters[spec.name]
                    else:
                        self.clusters[spec.name] = before
                    raise
            if spec.last_backup_age_seconds is not None:  # the Velero schedule's last run
                self.take_backup(self.clusters[spec.name], f"scheduled-{spec.name}"[:63],
                                 taken_at=time.time() - spec.last_backup_age_seconds)
        for spec in fleet.clusters:  # clusters on your own hardware: their controllers' objects (kube_objects imports this)
            if spec.provider == "capi":
                from regatta.sim import cluster_api

                cluster_api.install(self, spec)
            elif spec.provider == "suc":
                from regatta.sim import system_upgrade

                system_upgrade.install(self, spec)
        for record in fleet.traffic:
            self.traffic[record.service] = {"weights": dict(record.weights), "changes": []}
        return [spec.name for spec in fleet.clusters]

    def _build(self, spec: ClusterSpec) -> Cluster:
        cp = arithmetic.minor_text(spec.version)
        cluster = Cluster(
            name=spec.name,
            provider=spec.provider,
            region=spec.region,
            labels=dict(spec.labels),
            version=cp,
            time_scale=spec.time_scale,
            site=spec.site,
            settings=dict(spec.cloud),
            insights=[insight.model_dump() for insight in spec.insights],
        )
        if spec.provider == "eks":
            cluster.addons = dict(spec.addons) if spec.addons is not None else eks_addons.installed_by_default(cp)
        if spec.provider == "aks":
            cluster.settings.setdefault("identity", {"type": "SystemAssigned"})
        pool_specs = list(spec.node_pools)
        if spec.provider == "suc":  # the servers, which run the control plane, are nodes of the cluster too
            from regatta.sim.system_upgrade import server_pool_labels

            pool_specs.insert(0, NodePoolSpec(name="server", nodes=spec.control_plane_nodes, labels=server_pool_labels(),
                                              node_size=spec.node_pools[0].node_size if spec.node_pools else "m5.large"))
        for pool_spec in pool_specs:
            version = arithmetic.minor_text(pool_spec.version or spec.version)
            pool = NodePool(
                name=pool_spec.name, version=version, size=pool_spec.node_size, desired=pool_spec.nodes,
                labels=dict(pool_spec.labels), image=pool_spec.node_image or newest_node_image(spec.provider, version),
                subnets=list(pool_spec.subnets if pool_spec.subnets is not None else self._default_subnets(spec.provider)),
                node_role=pool_spec.node_role or (self.accounts.eks.node_roles[0] if spec.provider == "eks" else None),
                taints=[dict(t) for t in pool_spec.taints], settings=dict(pool_spec.cloud),
                allocatable=_allocatable(pool_spec),
            )
            if spec.provider == "eks" and "launchTemplate" in pool.settings:
                self._from_launch_template(pool)
            if spec.provider == "gke" and "locations" not in pool.settings:
                pool.settings["locations"] = _gke_seeded_locations(spec.region, pool.desired)
            if spec.provider == "aks" and not any("mode" in p.cloud for p in spec.node_pools):
                pool.settings["mode"] = "System" if not cluster.pools else "User"  # AKS's first pool is its System pool
            cluster.pools[pool.name] = pool
            for _ in range(pool.desired):
                self._add_node(cluster, pool, ready_at=0.0)
        for workload in spec.workloads:
            cluster.namespaces.add(workload.namespace)
            labels = workload.pod_labels
            volumes = [{"name": "scratch", "emptyDir": {}}] if workload.empty_dir else []
            requests = workload.requests
            containers = [{"name": "app", "resources": {"requests": {k: v for k, v in requests.model_dump().items() if v}}}
                           ] if requests is not None else []
            cpu_m, memory_mi = arithmetic.pod_requests(containers)
            if workload.kind == "Pod":  # `kubectl run`: pods no controller will recreate
                for index in range(workload.replicas):
                    pod = self.create_pod(cluster, workload.namespace, {
                        "metadata": {"name": f"{workload.name}-{index}", "labels": labels},
                        "spec": {"volumes": volumes, **({"containers": containers} if containers else {})}}, schedule=False)
                    pod.ready_seconds = workload.ready_seconds
            else:
                into = cluster.stateful_sets if workload.kind == "StatefulSet" else cluster.deployments
                into[(workload.namespace, workload.name)] = Deployment(
                    namespace=workload.namespace, name=workload.name, replicas=workload.replicas, labels=labels,
                    annotations=dict(workload.annotations), volumes=volumes, cpu_m=cpu_m, memory_mi=memory_mi,
                    kind=workload.kind, ready_seconds=workload.ready_seconds, unready=workload.unready,
                )
            if workload.pdb:
                cluster.pdbs[(workload.namespace, f"{workload.name}-pdb")] = Pdb(
                    namespace=workload.namespace, name=f"{workload.name}-pdb", selector=labels,
                    min_available=workload.pdb.min_available, max_unavailable=workload.pdb.max_unavailable,
                )
        self.reconcile(cluster, start_ready=True)
        for workload in spec.workloads:  # bare pods a fleet file says are not Ready (a controller's are made so)
            if workload.kind == "Pod":
                mine = sorted((p for p in cluster.pods.values() if p.namespace == workload.namespace and p.owner is None
                               and p.name.startswith(f"{workload.name}-")), key=lambda p: p.name)
                for pod in mine[:workload.unready]:
                    pod.never_ready = True
        for budget in spec.pdbs:
            cluster.namespaces.add(budget.namespace)
            cluster.pdbs[(budget.namespace, budget.name)] = Pdb(
                namespace=budget.namespace, name=budget.name, selector=dict(budget.selector.matchLabels),
                expressions=[dict(e) for e in budget.selector.matchExpressions],
                min_available=budget.min_available, max_unavailable=budget.max_unavailable,
            )
        for engine in spec.policy_engines:
            self._install_policy_engine(cluster, engine)
        cluster.namespaces.update(spec.namespaces)
        for resource in spec.custom_resources:
            self._install_crd(cluster, policy_engines.crd(resource.group, resource.version, resource.plural,
                                                          resource.kind, resource.scope))
        self.reconcile(cluster, start_ready=True)
        return cluster

    def _from_launch_template(self, pool: NodePool) -> None:
        """A fleet file's EKS node group made from one of the account's launch templates: EKS describes the
        template by id and name, and a template with an AMI of its own makes the group CUSTOM, its nodes
        running that AMI's kubelet."""
        named = pool.settings["launchTemplate"]
        template = next((t for t in self.accounts.eks.launch_templates if t.id == named.get("id") or t.name == named.get("name")),
                        None)
        if template is None:
            raise SimError(400, "InvalidParameterException", f"node pool {pool.name}: no launch template {named} in the account")
        version = str(named.get("version") or template.default_version)
        chosen = template.versions[version]
        pool.settings["launchTemplate"] = {"id": template.id, "name": template.name, "version": version}
        if chosen.instance_type:
            pool.size = chosen.instance_type
        if chosen.image_id:
            pool.settings["amiType"] = "CUSTOM"
            pool.image = chosen.image_id
            pool.kubelet = arithmetic.minor_text(chosen.kubernetes_version) if chosen.kubernetes_version else None

    def _install_policy_engine(self, cluster: Cluster, engine: str) -> None:
        """What the engine's Helm chart leaves: its CRDs and its admission controller."""
        for group, version, plural, kind, scope in policy_engines.CRDS[engine]:
            self._install_crd(cluster, policy_engines.crd(group, version, plural, kind, scope))
        namespace, name = policy_engines.CONTROLLERS[engine]
        cluster.namespaces.add(namespace)
        cluster.deployments[(namespace, name)] = Deployment(namespace=namespace, name=name, replicas=1,
                                                            labels={"app": name}, annotations={})

    @staticmethod
    def _install_crd(cluster: Cluster, body: dict) -> None:
        """A CustomResourceDefinition the cluster has from the start, established: its kind is served at once."""
        cluster.resource_version += 1
        body["metadata"].update({"uid": f"{cluster.name}-{next(cluster.seq):06d}", "generation": 1,
                                 "resourceVersion": str(cluster.resource_version),
                                 "creationTimestamp": body["status"]["conditions"][0]["lastTransitionTime"]})
        cluster.objects[("apiextensions.k8s.io/v1", "customresourcedefinitions", "", body["metadata"]["name"])] = body

    # ------------------------------------------------------------------ lookups

    def cluster(self, name: str) -> Cluster:
        try:
            return self.clusters[name]
        except KeyError:
            raise SimError(404, "NotFound", f"No cluster found for name: {name}.") from None

    def cloud_cluster(self, name: str, *, provider: str, operation: str, missing: SimError) -> Cluster:
        """The cluster a cloud API call names, if that cloud owns it, after its faults had their say."""
        cluster = self.clusters.get(name)
        if cluster is None or cluster.provider != provider:
            raise missing
        self.check_faults(cluster, api="cloud", operation=operation)
        return cluster

    def cloud_operation(self, operation_id: str, *, operation: str) -> Update:
        """An operation a client polls (it outlives its cluster), after that cluster's faults had their say."""
        update = self.updates.get(operation_id)
        if update is None:
            raise SimError(404, "NotFound", f"Operation {operation_id} not found.")
        self.check_faults(update.cluster, api="cloud", operation=operation)
        return update

    def check_faults(self, cluster: Cluster | str, *, api: Literal["cloud", "kube"], operation: str) -> None:
        name = cluster if isinstance(cluster, str) else cluster.name
        target = self.clusters.get(name) if isinstance(cluster, str) else cluster
        if target is not None and target.region in self.unreachable_regions:
            raise SimError(504, "GatewayTimeout", f"{operation} on {name} timed out: region {target.region} is unreachable"
                           " (injected)", delay=self.scaled(target, REGION_TIMEOUT_SECONDS))
        faults = self.faults.get(name)
        if faults is None:
            return
        if faults.unreachable:
            raise SimError(503, "ServiceUnavailable", f"the region of {name} is unreachable (injected)")
        if faults.api not in ("any", api) or (faults.fail_operation and faults.fail_operation != operation):
            return
        if faults.fail_times > 0:
            faults.fail_times -= 1
            reason = {400: "InvalidParameterException" if api == "cloud" else "BadRequest", 403: "Forbidden"}.get(
                faults.fail_status, "InternalError")
            raise SimError(faults.fail_status, reason, f"injected failure on {operation}")
        if faults.error_rate and self.random.random() < faults.error_rate:
            code = self.random.choice(faults.error_codes)
            reason = {429: "TooManyRequests", 500: "InternalError", 503: "ServiceUnavailable"}.get(code, "Error")
            raise SimError(code, reason, f"injected {code} on {operation}")

    # ------------------------------------------------------------------ nodes, pods, controllers

    # ------------------------------------------------------------------ addresses (regatta/sim/addresses.py)

    def subnet_available(self, subnet: str, *, building: Cluster | None = None) -> int:
        """EC2's AvailableIpAddressCount for an EKS subnet of the account (with the nodes of a cluster being built,
        in place of the one of its name)."""
        size = self.accounts.eks.subnet_addresses.get(subnet)
        if size is None:
            return addresses.subnet_available(None, 0)
        clusters = {**self.clusters, **({building.name: building} if building is not None else {})}
        return addresses.subnet_available(size, sum(node.addresses for cluster in clusters.values() if cluster.provider == "eks"
                                                    for node in cluster.nodes.values() if node.subnet == subnet))

    def gke_pod_range(self, cluster: Cluster) -> str:
        return str(cluster.settings.get("clusterIpv4Cidr") or addresses.GKE_DEFAULT_POD_RANGE)

    def gke_pod_cidr_size(self, pool: NodePool) -> int:
        max_pods = int((pool.settings.get("maxPodsConstraint") or {}).get("maxPodsPerNode") or addresses.GKE_DEFAULT_MAX_PODS)
        return addresses.gke_pod_cidr_size(max_pods)

    def gke_pod_range_free(self, cluster: Cluster) -> int:
        return addresses.range_addresses(self.gke_pod_range(cluster)) - sum(node.addresses for node in cluster.nodes.values())

    def subnet_zone(self, subnet: str) -> str:
        """The zone letter of an EKS subnet of the account (regatta/sim/addresses.py)."""
        subnets = self.accounts.eks.subnets
        return addresses.zone_letter(subnets.index(subnet)) if subnet in subnets else "a"

    def _counted(self, cluster: Cluster, pool: NodePool) -> dict[str, int | None]:
        """Each subnet of an EKS group and its free addresses, None for one the simulator does not count."""
        sized = self.accounts.eks.subnet_addresses
        return {subnet: self.subnet_available(subnet, building=cluster) if subnet in sized else None for subnet in pool.subnets}

    def _node_addresses(self, cluster: Cluster, pool: NodePool, *, zone: str | None = None) -> tuple[str, int, str] | None:
        """Where a new node of `pool` would hold its addresses, how many, and its zone letter ("" where the zone is not
        the network's to say): None when its cloud has no room for it. An EKS node of a group with a counted subnet goes
        to `zone` (the zone of the node it replaces) or else the group's zone with the fewest of its nodes, there to the
        subnet with the most room, as the Auto Scaling group balances its zones."""
        if cluster.provider == "eks":
            need = addresses.eks_node_addresses(POOL_CAPACITY.get(pool.size, 110))
            available = self._counted(cluster, pool)
            if all(free is None for free in available.values()):
                return (pool.subnets[0] if pool.subnets else "", need, "")
            zones = sorted({self.subnet_zone(subnet) for subnet in pool.subnets})
            if zone is None or zone not in zones:
                held = collections.Counter(node.zone[-1] for node in cluster.pool_nodes(pool.name))
                zones.sort(key=lambda letter: held[letter])
            for letter in ([zone] if zone in zones else zones):
                subnet = addresses.pick_subnet([s for s in pool.subnets if self.subnet_zone(s) == letter], available, need)
                if subnet is not None:
                    return subnet, need, letter
            return None
        if cluster.provider == "gke":
            block = 1 << (32 - self.gke_pod_cidr_size(pool))
            return ("", block, "") if self.gke_pod_range_free(cluster) >= block else None
        return "", 0, ""

    def no_room_for_a_node(self, cluster: Cluster, pool: NodePool, *, zone: str | None = None) -> tuple[str, str] | None:
        """Why the cloud cannot create one more node of `pool` (in `zone`), as its error code and message; None when it can."""
        if self._node_addresses(cluster, pool, zone=zone) is not None:
            return None
        if cluster.provider == "eks":
            return "InsufficientFreeAddresses", (f"Subnets {', '.join(pool.subnets)} do not have enough free addresses for a"
                                                 f" node of instance type {pool.size}"
                                                 + (f" in {cluster.region}{zone}" if zone else ""))
        return "IP_SPACE_EXHAUSTED", (f"Instance creation failed: the Pod range {self.gke_pod_range(cluster)} of cluster"
                                      f" {cluster.name} has no free /{self.gke_pod_cidr_size(pool)} block for a node of pool"
                                      f" {pool.name}")

    def surge_shortfall(self, cluster: Cluster, pool: NodePool) -> tuple[str, str] | None:
        """Why the cloud's upgrade of `pool` cannot add its new nodes at once, as the cloud fails its scale-up: EKS
        raises the group by the larger of maxUnavailable and up to two nodes in each zone of its subnets (none first
        under MINIMAL), GKE by maxSurge in each of the pool's zones (a blue-green upgrade by the whole pool)."""
        if cluster.provider == "eks":
            config = pool.settings.get("updateConfig") or {}
            counted = self._counted(cluster, pool)
            if config.get("updateStrategy") == "MINIMAL" or all(free is None for free in counted.values()):
                return None
            unavailable = (-(-int(config["maxUnavailablePercentage"]) * pool.desired // 100)
                           if config.get("maxUnavailablePercentage") else int(config.get("maxUnavailable") or 1))
            zones = sorted({self.subnet_zone(subnet) for subnet in pool.subnets})
            each = max(2, -(-unavailable // len(zones)))
            need = addresses.eks_node_addresses(POOL_CAPACITY.get(pool.size, 110))
            for letter in zones:
                there = [subnet for subnet in pool.subnets if self.subnet_zone(subnet) == letter]
                if addresses.nodes_that_fit(there, counted, need, each) < each:
                    return "InsufficientFreeAddresses", (f"Subnets {', '.join(there)} in {cluster.region}{letter} do not have"
                                                         f" enough free addresses for {each} nodes of instance type {pool.size}")
            return None
        if cluster.provider == "gke":
            max_surge, blue_green = self.gke_surge(pool)
            zone_count = max(1, len(pool.settings.get("locations") or []))
            surge = pool.desired if blue_green else max_surge * zone_count
            block = 1 << (32 - self.gke_pod_cidr_size(pool))
            if surge and self.gke_pod_range_free(cluster) // block < surge:
                return "IP_SPACE_EXHAUSTED", (f"Instance creation failed: the Pod range {self.gke_pod_range(cluster)} of cluster"
                                              f" {cluster.name} has no {surge} free /{self.gke_pod_cidr_size(pool)} blocks for"
                                              f" the new nodes of pool {pool.name}")
        return None

    def terminates_first(self, cluster: Cluster, pool: NodePool) -> bool:
        """Whether the cloud's upgrade of `pool` removes a node before it adds one: EKS's MINIMAL strategy, a GKE
        surge with maxSurge 0."""
        if cluster.provider == "eks":
            return (pool.settings.get("updateConfig") or {}).get("updateStrategy") == "MINIMAL"
        if cluster.provider == "gke":
            max_surge, blue_green = self.gke_surge(pool)
            return not blue_green and max_surge == 0
        return False

    @staticmethod
    def gke_surge(pool: NodePool) -> tuple[int, bool]:
        """A GKE pool's maxSurge and whether it upgrades blue-green, as GKE reads its upgradeSettings: 1 when it has
        none; proto3 JSON leaves a zero out and may give the strategy by its number (BLUE_GREEN is 2)."""
        settings = pool.settings.get("upgradeSettings")
        if not settings:
            return 1, False
        return int(settings.get("maxSurge") or 0), settings.get("strategy") in ("BLUE_GREEN", 2, "2")

    def _add_node(self, cluster: Cluster, pool: NodePool, *, ready_at: float | None = None, version: str | None = None,
                  image: str | None = None, zone: str | None = None) -> Node:
        held = self._node_addresses(cluster, pool, zone=zone)
        if held is None:
            raise SimError(400, *(self.no_room_for_a_node(cluster, pool, zone=zone) or ("InsufficientFreeAddresses", "no room")))
        seq = next(cluster.seq)
        zone = f"{cluster.region}{held[2] or 'abc'[seq % 3]}"
        if ready_at is None:
            ready_at = (
                float("inf") if cluster.faults.node_never_ready
                else self.now() + self.scaled(cluster, self.step_seconds(cluster, "node_boot_seconds", NODE_BOOT_SECONDS))
            )
        node = Node(
            name=f"{pool.name}-{seq:03d}",
            pool=pool.name,
            version=f"v{version or pool.kubelet or pool.version}.{seq % 7 + 1}",
            size=pool.size,
            capacity=pool.allocatable[2] if pool.allocatable else POOL_CAPACITY.get(pool.size, 110),
            ready_at=ready_at,
            zone=zone,
            labels=dict(pool.labels),
            image=image or pool.image,
            cpu_m=pool.allocatable[0] if pool.allocatable else NODE_ALLOCATABLE.get(pool.size, DEFAULT_ALLOCATABLE)[0],
            memory_mi=pool.allocatable[1] if pool.allocatable else NODE_ALLOCATABLE.get(pool.size, DEFAULT_ALLOCATABLE)[1],
            subnet=held[0],
            addresses=held[1],
        )
        cluster.nodes[node.name] = node
        cluster.resource_version += 1
        self._check_skew(cluster)
        return node

    def remove_node(self, cluster: Cluster, name: str, *, why: str) -> None:
        """The machine goes away. Pods still on it die without asking any PDB: if that takes a
        budget below its floor, it is a violation, because whoever removed the node should
        have drained it first."""
        node = cluster.nodes.pop(name, None)
        if node is None:
            return
        victims = cluster.pods_on(name)
        for pod in victims:
            self._remove_pod(cluster, pod, via=f"{why} (node {name} removed with the pod on it)")
        cluster.draining.discard(name)
        cluster.resource_version += 1
        self.reconcile(cluster)

    def set_unschedulable(self, cluster: Cluster, name: str, value: bool) -> Node:
        node = cluster.nodes.get(name)
        if node is None:
            raise SimError(404, "NotFound", f'nodes "{name}" not found')
        node.unschedulable = value
        if not value:
            cluster.draining.discard(name)  # a drain episode ends when the node returns to service
        cluster.resource_version += 1
        self.reconcile(cluster)
        return node

    def reconcile(self, cluster: Cluster, *, start_ready: bool = False) -> None:
        """The deployment controller and the scheduler: keep replicas, place pending pods."""
        now = self.now()
        for pod in cluster.pods.values():
            if pod.node is None:
                self._schedule(cluster, pod, now, start_ready=start_ready)
        for deployment in [*cluster.deployments.values(), *cluster.stateful_sets.values()]:
            owner_kind = "StatefulSet" if deployment.kind == "StatefulSet" else "ReplicaSet"
            owned = [p for p in cluster.pods.values() if p.owner == deployment.name and p.namespace == deployment.namespace
                     and p.owner_kind == owner_kind]
            # a StatefulSet makes the lowest ordinals it lacks, each under its own name again
            taken = {p.name for p in owned}
            ordinals = iter(i for i in range(deployment.replicas + len(owned)) if f"{deployment.name}-{i}" not in taken)
            for _ in range(deployment.replicas - len(owned)):
                uid = next(self._uids)
                pod = Pod(
                    name=f"{deployment.name}-{next(ordinals)}" if owner_kind == "StatefulSet" else f"{deployment.name}-{uid:06x}",
                    namespace=deployment.namespace,
                    labels=dict(deployment.labels),
                    owner=deployment.name,
                    node=None,
                    ready_at=float("inf"),
                    uid=f"pod-{uid}",
                    cpu_m=deployment.cpu_m,
                    memory_mi=deployment.memory_mi,
                    volumes=[dict(v) for v in deployment.volumes],
                    owner_kind=owner_kind,
                    ready_seconds=deployment.ready_seconds,
                    never_ready=sum(p.never_ready for p in owned) < deployment.unready,
                )
                owned.append(pod)
                cluster.pods[(pod.namespace, pod.name)] = pod
                self._schedule(cluster, pod, now, start_ready=start_ready)
            surplus = len(owned) - deployment.replicas
            for pod in sorted(owned, key=lambda p: (p.node is not None, p.created))[: max(0, surplus)]:
                cluster.pods.pop((pod.namespace, pod.name), None)

    def _schedule(self, cluster: Cluster, pod: Pod, now: float, *, start_ready: bool) -> None:
        load: dict[str, int] = {name: 0 for name in cluster.nodes}
        same: dict[str, int] = {name: 0 for name in cluster.nodes}
        cpu: dict[str, int] = {name: 0 for name in cluster.nodes}
        memory: dict[str, int] = {name: 0 for name in cluster.nodes}
        for other in cluster.pods.values():
            if other.node in load:
                load[other.node] += 1
                cpu[other.node] += other.cpu_m
                memory[other.node] += other.memory_mi
                if other.owner == pod.owner:
                    same[other.node] += 1
        candidates = [
            node for node in cluster.nodes.values()
            if node.ready(now) and not node.unschedulable and load[node.name] < node.capacity
            and cpu[node.name] + pod.cpu_m <= node.cpu_m and memory[node.name] + pod.memory_mi <= node.memory_mi
        ]
        if not candidates:
            return
        best = min(candidates, key=lambda n: (same[n.name], load[n.name], n.name))
        pod.node = best.name
        pod.started = time.time()
        start = pod.ready_seconds if pod.ready_seconds is not None else self.step_seconds(cluster, "pod_start_seconds",
                                                                                        POD_START_SECONDS)
        pod.ready_at = 0.0 if start_ready else now + self.scaled(cluster, start)

    def _remove_pod(self, cluster: Cluster, pod: Pod, *, via: str) -> None:
        now = self.now()
        covering = [pdb for pdb in cluster.pdbs.values() if pdb.namespace == pod.namespace and _covers(pdb, pod.labels)]
        was_ready = pod.ready(now)
        cluster.pods.pop((pod.namespace, pod.name), None)
        for pdb in covering:
            expected, healthy = self._pdb_counts(cluster, pdb, now)
            desired = arithmetic.desired_healthy(
                min_available=pdb.min_available, max_unavailable=pdb.max_unavailable, expected=expected + 1
            )
            if was_ready and healthy < desired:
                self.pdb_violations.append({
                    "cluster": cluster.name, "pdb": f"{pdb.namespace}/{pdb.name}", "pod": f"{pod.namespace}/{pod.name}",
                    "node": pod.node, "healthy_after": healthy, "desired_healthy": desired, "via": via,
                })

    def _pdb_counts(self, cluster: Cluster, pdb: Pdb, now: float) -> tuple[int, int]:
        matching = [p for p in cluster.pods.values() if p.namespace == pdb.namespace and _covers(pdb, p.labels)]
        return len(matching), sum(1 for p in matching if p.ready(now))

    def pdb_status(self, cluster: Cluster, pdb: Pdb) -> dict:
        expected, healthy = self._pdb_counts(cluster, pdb, self.now())
        desired = arithmetic.desired_healthy(
            min_available=pdb.min_available, max_unavailable=pdb.max_unavailable, expected=expected
        )
        allowed = 0 if pdb.blocked else max(0, healthy - desired)
        if pdb.blocked:
            healthy = min(healthy, desired)
        return {"expectedPods": expected, "currentHealthy": healthy, "desiredHealthy": desired, "disruptionsAllowed": allowed}

    def evict(self, cluster: Cluster, namespace: str, name: str, *, by: str = "eviction API") -> None:
        """policy/v1 eviction: refuse with 429 when the pod's PDB would drop below its floor."""
        pod = cluster.pods.get((namespace, name))
        if pod is None:
            raise SimError(404, "NotFound", f'pods "{name}" not found')
        covering = [p for p in cluster.pdbs.values() if p.namespace == namespace and _covers(p, pod.labels)]
        now = self.now()
        if len(covering) > 1:
            self._held(cluster, pod, covering, now)
            raise SimError(500, "InternalError", "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.")
        if covering:
            pdb = covering[0]
            status = self.pdb_status(cluster, pdb)
            unhealthy_may_go = not pod.ready(now) and status["currentHealthy"] >= status["desiredHealthy"] and not pdb.blocked
            if status["disruptionsAllowed"] < 1 and not unhealthy_may_go:
                self._held(cluster, pod, covering, now)
                raise SimError(
                    429, "TooManyRequests", "Cannot evict pod as it would violate the pod's disruption budget.",
                    causes=[{
                        "reason": "DisruptionBudget",
                        "message": f"The disruption budget {pdb.name} needs {status['desiredHealthy']} healthy pods"
                        f" and has {status['currentHealthy']} currently",
                    }],
                )
        node = cluster.nodes.get(pod.node) if pod.node else None
        if node is not None and node.unschedulable and node.name not in cluster.draining:
            cluster.draining.add(node.name)
            episodes = cluster.drain_episodes[node.name] = cluster.drain_episodes.get(node.name, 0) + 1
            if episodes > 1:
                self.double_drains.append({"cluster": cluster.name, "node": node.name, "drains": episodes, "by": by})
        self._remove_pod(cluster, pod, via=by)
        self.reconcile(cluster)

    def _held(self, cluster: Cluster, pod: Pod, budgets: list[Pdb], now: float) -> None:
        """One eviction a budget refused, on the node's record: refusals closer together than HELD_GAP_SECONDS are one
        hold, and `seconds` adds up the holds (a node drained twice is held twice, not for the time between)."""
        held = cluster.held_drains.setdefault(pod.node or "-", {"budgets": [], "pods": [], "first": now, "last": now,
                                                                 "refusals": 0, "seconds": 0.0})
        if now - held["last"] <= self.scaled(cluster, HELD_GAP_SECONDS):
            held["seconds"] += now - held["last"]
        held["last"], held["refusals"] = now, held["refusals"] + 1
        for key, value in (("budgets", [f"{b.namespace}/{b.name}" for b in budgets]), ("pods", [f"{pod.namespace}/{pod.name}"])):
            held[key] = sorted(set(held[key]) | set(value))

    def create_pod(self, cluster: Cluster, namespace: str, manifest: dict, *, schedule: bool = True) -> Pod:
        """A pod made directly (`kubectl run`), not by a controller: nothing recreates it once it goes."""
        meta, spec = manifest.get("metadata") or {}, manifest.get("spec") or {}
        name = meta.get("name") or ""
        if not name:
            raise SimError(422, "Invalid", "Pod \"\" is invalid: metadata.name: Required value: name or generateName is required")
        if namespace not in cluster.namespaces:
            raise SimError(404, "NotFound", f'namespaces "{namespace}" not found')
        if (namespace, name) in cluster.pods:
            raise SimError(409, "AlreadyExists", f'pods "{name}" already exists')
        cpu_m, memory_mi = arithmetic.pod_requests(spec.get("containers") or [])
        uid = next(self._uids)
        pod = cluster.pods[(namespace, name)] = Pod(
            name=name, namespace=namespace, labels={k: str(v) for k, v in (meta.get("labels") or {}).items()}, owner=None,
            node=None, ready_at=float("inf"), uid=f"pod-{uid}", cpu_m=cpu_m, memory_mi=memory_mi,
            volumes=[dict(v) for v in spec.get("volumes") or []])
        cluster.resource_version += 1
        if schedule:
            self.reconcile(cluster)
        return pod

    def delete_pod(self, cluster: Cluster, namespace: str, name: str, *,
                   via: str = "DELETE pod (bypasses PodDisruptionBudgets)") -> None:
        pod = cluster.pods.get((namespace, name))
        if pod is None:
            raise SimError(404, "NotFound", f'pods "{name}" not found')
        self._remove_pod(cluster, pod, via=via)
        self.reconcile(cluster)

    def _check_skew(self, cluster: Cluster) -> None:
        found = arithmetic.skew_breaks(api_server=cluster.version, kubelets={n.name: n.version for n in cluster.nodes.values()})
        known = {v["violation"] for v in self.skew_violations if v["cluster"] == cluster.name}
        self.skew_violations += [{"cluster": cluster.name, "violation": v} for v in found if v not in known]

    # ------------------------------------------------------------------ cloud operations

    def _token_update(self, cluster: Cluster, token: str | None) -> Update | None:
        if token and token in cluster.tokens:
            return cluster.updates[cluster.tokens[token]]
        return None

    def _new_update(self, cluster: Cluster, *, kind: str, nodegroup: str | None, params: list[dict], token: str | None) -> Update:
        update = Update(id=f"upd-{next(self._uids):08x}", cluster=cluster.name, nodegroup=nodegroup, type=kind, params=params,
                        created_at=self.calendar_now())
        cluster.updates[update.id] = update
        self.updates[update.id] = update
        if token:
            cluster.tokens[token] = update.id
        return update

    def _spawn(self, coro) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def start_control_plane_upgrade(self, cluster: Cluster, version: str, token: str | None) -> Update:
        if (existing := self._token_update(cluster, token)) is not None:
            return existing
        if any(u.status == "InProgress" and u.nodegroup is None for u in cluster.updates.values()):
            raise SimError(409, "ResourceInUseException", f"Cluster {cluster.name} has an update in progress.")
        wanted = arithmetic.minor(version)
        current = arithmetic.minor(cluster.version)
        if wanted[0] != current[0] or wanted[1] != current[1] + 1:
            raise SimError(
                400, "InvalidParameterException",
                f"Unsupported Kubernetes minor version update from {cluster.version} to {version}",
            )
        behind = [n.name for n in cluster.nodes.values() if wanted[1] - arithmetic.minor(n.version)[1] > arithmetic.KUBELET_MAY_TRAIL_BY]
        if behind:
            raise SimError(
                400, "InvalidParameterException",
                f"Nodes {', '.join(sorted(behind))} would fall outside the supported version skew of {version}",
            )
        update = self._new_update(cluster, kind="VersionUpdate", nodegroup=None,
                                  params=[{"type": "Version", "value": version}], token=token)
        cluster.status = "UPDATING"
        self._spawn(self._run_control_plane_upgrade(cluster, update, version))
        return update

    async def _run_control_plane_upgrade(self, cluster: Cluster, update: Update, version: str) -> None:
        await self.pause(cluster, self.step_seconds(cluster, "control_plane_upgrade_seconds", CONTROL_PLANE_UPGRADE_SECONDS))
        while cluster.faults.hang:
            await asyncio.sleep(0.05)
        cluster.previous_version = None if update.type == "VersionRollback" else cluster.version
        cluster.version_changed_at = self.calendar_now()
        cluster.version = version
        cluster.requested_deprecated.clear()  # a new API server: its in-memory gauges start empty
        cluster.status = "ACTIVE"
        update.status = "Successful"
        self._check_skew(cluster)

    def start_control_plane_rollback(self, cluster: Cluster, version: str, token: str | None) -> Update:
        """An EKS version rollback of the control plane to the minor it was upgraded from (the cloud's API has
        judged that it may): the same control plane change, recorded as a VersionRollback."""
        if (existing := self._token_update(cluster, token)) is not None:
            return existing
        update = self._new_update(cluster, kind="VersionRollback", nodegroup=None,
                                  params=[{"type": "Version", "value": version}], token=token)
        cluster.status = "UPDATING"
        self._spawn(self._run_control_plane_upgrade(cluster, update, version))
        return update

    def start_outside_operation(self, cluster: Cluster, *, node_pool: str | None, seconds: float, then: int = 0) -> Update:
        """An operation Regatta did not start: GKE's own auto-upgrade, AKS's auto-upgrade channel, a colleague's
        console click. The cluster (or the pool) is busy with it for `seconds` of simulated time and every cloud
        answers a change of it as busy meanwhile; nothing else about the cluster changes. `then` more follow, each
        starting the moment the one before ends (an auto-upgrade that keeps taking its turn)."""
        if node_pool is not None:
            self.pool(cluster, node_pool).status = "UPDATING"
        else:
            cluster.status = "UPDATING"
        params = [{"type": "Version", "value": cluster.pools[node_pool].version if node_pool else cluster.version}]
        update = self._new_update(cluster, kind="VersionUpdate", nodegroup=node_pool, params=params, token=None)
        update.outside = True
        self._spawn(self._run_outside_operation(cluster, update, node_pool, seconds, then))
        return update

    async def _run_outside_operation(self, cluster: Cluster, update: Update, node_pool: str | None, seconds: float,
                                     then: int) -> None:
        await self.pause(cluster, seconds)
        if node_pool is not None and node_pool in cluster.pools:
            cluster.pools[node_pool].status = "ACTIVE"
        elif node_pool is None:
            cluster.status = "ACTIVE"
        update.status = "Successful"
        if then and (node_pool is None or node_pool in cluster.pools):
            self.start_outside_operation(cluster, node_pool=node_pool, seconds=seconds, then=then - 1)

    def running_operations(self, cluster: Cluster) -> list[Update]:
        """Every operation of the cluster still in progress, oldest first."""
        return [u for u in cluster.updates.values() if u.status == "InProgress"]

    def start_addon_update(self, cluster: Cluster, addon: str, version: str, token: str | None) -> Update:
        """An EKS managed add-on moved to `version`: it takes a while, then the add-on runs it."""
        update = self._new_update(cluster, kind="AddonUpdate", nodegroup=None,
                                  params=[{"type": "AddonVersion", "value": version}], token=token)
        update.addon = addon
        self._spawn(self._run_addon_update(cluster, update, addon, version))
        return update

    async def _run_addon_update(self, cluster: Cluster, update: Update, addon: str, version: str) -> None:
        await self.pause(cluster, ADDON_UPDATE_SECONDS)
        while cluster.faults.hang:
            await asyncio.sleep(0.05)
        cluster.addons[addon] = version
        update.status = "Successful"

    def start_node_pool_upgrade(self, cluster: Cluster, pool_name: str, version: str | None, token: str | None, force: bool,
                                *, image: str | None = None, kubelet: str | None = None,
                                settings: dict[str, Any] | None = None) -> Update:
        """A surge replacement of the pool's nodes: onto a new version (and that version's newest
        image unless `image` names one), or onto a new image of the version it runs. `kubelet` is the
        version the new image's kubelet runs when the image decides it (an EKS custom AMI); `settings`
        are what the pool's description says afterwards (a new launch template version, image type)."""
        if (existing := self._token_update(cluster, token)) is not None:
            return existing
        pool = self.pool(cluster, pool_name)
        target = arithmetic.minor_text(version or cluster.version)
        if arithmetic.minor(target) > arithmetic.minor(cluster.version):
            raise SimError(
                400, "InvalidParameterException",
                f"Requested Nodegroup version {target} is newer than the cluster version {cluster.version}",
            )
        image = image or newest_node_image(cluster.provider, target)
        if pool.status != "ACTIVE" or cluster.pool_in_flight(pool_name):
            raise SimError(409, "ResourceInUseException", f"Nodegroup {pool_name} is not ACTIVE (status {pool.status}).")
        params = [{"type": "Version", "value": target}, {"type": "ReleaseVersion", "value": image}]
        update = self._new_update(cluster, kind="VersionUpdate", nodegroup=pool_name, params=params, token=token)
        pool.status = "UPDATING"
        self._spawn(self._run_surge(cluster, pool, update, target, force, image,
                                    kubelet=arithmetic.minor_text(kubelet) if kubelet else None, settings=settings or {}))
        return update

    async def _wait_ready(self, cluster: Cluster, node: Node) -> bool:
        waited = 0.0
        while not node.ready(self.now()):
            if waited >= NODE_READY_BUDGET_SECONDS or node.name not in cluster.nodes:
                return False
            await self.pause(cluster, EVICTION_RETRY_SECONDS)
            waited += EVICTION_RETRY_SECONDS
        self.reconcile(cluster)
        return True

    async def _run_surge(self, cluster: Cluster, pool: NodePool, update: Update, target: str, force: bool, image: str, *,
                         kubelet: str | None, settings: dict[str, Any]) -> None:
        """What EKS does for a managed node group: one new node, drain one old node, remove it; the new node first
        unless the pool's cloud removes first (EKS MINIMAL, GKE maxSurge 0). A scale-up the pool's network has no room
        for fails before any node moves (`surge_shortfall`)."""
        try:
            runs = kubelet or target
            old_nodes = [n for n in cluster.pool_nodes(pool.name)
                         if arithmetic.minor(n.version) != arithmetic.minor(runs) or n.image != image]
            if old_nodes and (short := self.surge_shortfall(cluster, pool)) is not None:
                self._fail(update, pool, *short, list(pool.subnets))
                return
            first_remove = self.terminates_first(cluster, pool)
            for old in old_nodes:
                while cluster.faults.hang:
                    await asyncio.sleep(0.05)
                zone = old.zone[-1] if cluster.provider == "eks" else None  # EKS: in the zone of the node it replaces
                if not first_remove and not await self._launch(cluster, pool, update, runs, image, zone):
                    return
                self.set_unschedulable(cluster, old.name, True)
                stuck = await self._drain_for_cloud(cluster, old, force=force, pool=pool)
                if stuck:
                    self.set_unschedulable(cluster, old.name, False)
                    self._fail(update, pool, "PodEvictionFailure",
                               "Reached max retries while trying to evict pods from nodes in node group " + pool.name,
                               [f"{p.namespace}/{p.name}" for p in stuck])
                    return
                await self.pause(cluster, self.step_seconds(cluster, "node_terminate_seconds", NODE_TERMINATE_SECONDS))
                self.remove_node(cluster, old.name, why="surge upgrade")
                if first_remove and not await self._launch(cluster, pool, update, runs, image, zone):
                    return
            pool.version, pool.image, pool.kubelet = target, image, kubelet
            pool.settings.update(settings)
            pool.status = "ACTIVE"
            pool.health_issues = []
            pool.modified = time.time()
            update.status = "Successful"
        except Exception as error:  # noqa: BLE001 - a bug in the simulator must show up as a failed update, not a hang
            self._fail(update, pool, "InternalFailure", repr(error), [])

    async def _launch(self, cluster: Cluster, pool: NodePool, update: Update, runs: str, image: str, zone: str | None) -> bool:
        """One new node of the upgrade, Ready; False (the update failed) if it finds no room or never joins."""
        if (no_room := self.no_room_for_a_node(cluster, pool, zone=zone)) is not None:
            self._fail(update, pool, *no_room, list(pool.subnets))
            return False
        fresh = self._add_node(cluster, pool, version=runs, image=image, zone=zone)
        if not await self._wait_ready(cluster, fresh):
            self.remove_node(cluster, fresh.name, why="surge node failed to join")
            self._fail(update, pool, "NodeCreationFailure", "Instances failed to join the kubernetes cluster", [fresh.name])
            return False
        return True

    def cloud_drain_budget(self, cluster: Cluster, pool: NodePool) -> tuple[float, bool]:
        """How long the cloud's own surge drain keeps asking a node's PodDisruptionBudgets (simulated seconds),
        and whether it then deletes the pods anyway (True) or fails the upgrade (False):
        EKS 15 minutes, then PodEvictionFailure; GKE an hour (or the pool's nodeDrainConfig.pdbTimeoutDuration),
        then on without them; AKS the pool's upgradeSettings.drainTimeoutInMinutes (30 by default), then
        UpgradeFailed."""
        if cluster.provider == "gke":
            timeout = (pool.settings.get("nodeDrainConfig") or {}).get("pdbTimeoutDuration")
            return (float(str(timeout).rstrip("s")) if timeout else GKE_PDB_TIMEOUT_SECONDS), True
        if cluster.provider == "aks":
            minutes = (pool.settings.get("upgradeSettings") or {}).get("drainTimeoutInMinutes") or 30
            return float(minutes) * 60, False
        return EVICTION_BUDGET_SECONDS, False

    async def _drain_for_cloud(self, cluster: Cluster, node: Node, *, force: bool, pool: NodePool) -> list[Pod]:
        budget, then_delete = self.cloud_drain_budget(cluster, pool)
        waited = 0.0
        while True:
            stuck = []
            for pod in list(cluster.pods_on(node.name)):
                if pod.namespace in SYSTEM_NAMESPACES:
                    continue
                try:
                    self.evict(cluster, pod.namespace, pod.name, by=f"{cluster.provider} managed node pool upgrade")
                except SimError:
                    if force or (then_delete and waited >= budget):
                        self.delete_pod(cluster, pod.namespace, pod.name,
                                        via=f"{cluster.provider} node pool upgrade past its PodDisruptionBudget timeout")
                    else:
                        stuck.append(pod)
            if not stuck or waited >= budget:
                return stuck
            await self.pause(cluster, EVICTION_RETRY_SECONDS)
            waited += EVICTION_RETRY_SECONDS

    def _fail(self, update: Update, pool: NodePool | None, code: str, message: str, resources: list[str]) -> None:
        update.status = "Failed"
        update.errors.append({"errorCode": code, "errorMessage": message, "resourceIds": resources})
        if pool is not None:
            pool.status = "ACTIVE"  # EKS hands a node group back to ACTIVE after a failed update
            pool.health_issues = [{"code": code, "message": message, "resourceIds": resources}]

    def pool(self, cluster: Cluster, name: str) -> NodePool:
        try:
            return cluster.pools[name]
        except KeyError:
            raise SimError(404, "ResourceNotFoundException", f"No node group found for name: {name}.") from None

    def create_node_pool(self, cluster: Cluster, *, name: str, version: str | None, size: str, desired: int,
                         labels: dict[str, str], token: str | None, image: str | None = None,
                         subnets: list[str] | None = None, node_role: str | None = None,
                         taints: list[dict[str, str]] | None = None, settings: dict[str, Any] | None = None,
                         kubelet: str | None = None) -> NodePool:
        """A new pool. `kubelet` is the version its nodes' kubelet runs when the image decides it (an
        EKS custom AMI); otherwise the pool's version."""
        if name in cluster.pools:
            existing = cluster.pools[name]
            if token and existing.token == token:
                return existing  # the same request again: EKS answers with what it already made
            raise SimError(409, "ResourceInUseException", f"NodeGroup already exists with name {name} and cluster name {cluster.name}")
        target = version or cluster.version
        if arithmetic.minor(target) > arithmetic.minor(cluster.version):
            raise SimError(400, "InvalidParameterException", f"Nodegroup version {target} is newer than the cluster version {cluster.version}")
        self.check_account(cluster.provider, subnets=list(subnets or []), node_role=node_role, size=size)
        minor = arithmetic.minor_text(target)
        pool = NodePool(name=name, version=minor, size=size, desired=desired, labels=dict(labels), status="CREATING",
                        token=token, image=image or newest_node_image(cluster.provider, minor),
                        subnets=list(subnets if subnets is not None else self._default_subnets(cluster.provider)),
                        node_role=node_role, taints=[dict(t) for t in taints or []], settings=dict(settings or {}),
                        kubelet=arithmetic.minor_text(kubelet) if kubelet else None)
        cluster.pools[name] = pool
        pool.operation = self._new_update(cluster, kind="CreateNodePool", nodegroup=name, params=[], token=None)
        self._spawn(self._run_create(cluster, pool))
        return pool

    async def _run_create(self, cluster: Cluster, pool: NodePool) -> None:
        nodes: list[Node] = []
        for _ in range(pool.desired):
            if (no_room := self.no_room_for_a_node(cluster, pool)) is not None:
                for node in nodes:
                    self.remove_node(cluster, node.name, why="node pool creation failed")
                pool.status = "CREATE_FAILED"
                pool.health_issues = [{"code": no_room[0], "message": no_room[1], "resourceIds": list(pool.subnets)}]
                assert pool.operation is not None
                self._fail(pool.operation, None, *no_room, list(pool.subnets))
                return
            nodes.append(self._add_node(cluster, pool))
        while cluster.faults.hang:
            await asyncio.sleep(0.05)
        for node in nodes:
            if not await self._wait_ready(cluster, node):
                issue: dict[str, Any] = {"code": "NodeCreationFailure", "message": "Instances failed to join the kubernetes cluster",
                         "resourceIds": [n.name for n in nodes if not n.ready(self.now())]}
                pool.status = "CREATE_FAILED"
                pool.health_issues = [issue]
                assert pool.operation is not None
                self._fail(pool.operation, None, issue["code"], issue["message"], issue["resourceIds"])
                return
        pool.status = "ACTIVE"
        assert pool.operation is not None
        pool.operation.status = "Successful"
        self.reconcile(cluster)

    def delete_node_pool(self, cluster: Cluster, name: str) -> NodePool:
        pool = self.pool(cluster, name)
        if pool.status == "DELETING":
            return pool
        if cluster.pool_in_flight(name):
            raise SimError(409, "ResourceInUseException", f"Nodegroup {name} has an update in progress.")
        pool.status = "DELETING"
        pool.operation = self._new_update(cluster, kind="DeleteNodePool", nodegroup=name, params=[], token=None)
        self._spawn(self._run_delete(cluster, pool))
        return pool

    async def _run_delete(self, cluster: Cluster, pool: NodePool) -> None:
        while cluster.faults.hang:
            await asyncio.sleep(0.05)
        for node in cluster.pool_nodes(pool.name):
            self.remove_node(cluster, node.name, why=f"node group {pool.name} deleted")
        await self.pause(cluster, self.step_seconds(cluster, "node_terminate_seconds", NODE_TERMINATE_SECONDS))
        cluster.pools.pop(pool.name, None)
        assert pool.operation is not None
        pool.operation.status = "Successful"

    def create_cluster(self, *, name: str, provider: str, region: str, version: str, labels: dict[str, str],
                       token: str | None) -> Cluster:
        """A new, empty control plane (node pools come separately, as on every cloud)."""
        if name in self.clusters:
            existing = self.clusters[name]
            if token and existing.tokens.get("create") == token:
                return existing  # the same request again
            raise SimError(409, "ResourceInUseException", f"Cluster already exists with name: {name}")
        cp = arithmetic.minor_text(version)
        cluster = Cluster(name=name, provider=provider, region=region, labels=dict(labels), version=cp, time_scale=None,
                          status="CREATING")
        cluster.faults = self.faults.setdefault(name, Faults())
        cluster.tokens["create"] = token or ""
        cluster.deployments[("kube-system", "coredns")] = Deployment(
            namespace="kube-system", name="coredns", replicas=2, labels={"k8s-app": "kube-dns"})
        self.clusters[name] = cluster
        operation = self._new_update(cluster, kind="CreateCluster", nodegroup=None, params=[], token=None)
        self._spawn(self._run_cluster_create(cluster, operation))
        return cluster

    async def _run_cluster_create(self, cluster: Cluster, operation: Update) -> None:
        await self.pause(cluster, CLUSTER_CREATE_SECONDS)
        while cluster.faults.hang:
            await asyncio.sleep(0.05)
        cluster.status = "ACTIVE"
        operation.status = "Successful"

    def take_backup(self, cluster: Cluster, name: str, *, taken_at: float | None = None) -> dict:
        """A Velero backup of the cluster's namespaced workloads, to the shared bucket. Taking one
        under a name that exists returns the one already taken."""
        taken = self.backups.setdefault(cluster.name, {})
        if name not in taken:
            taken[name] = {
                "cluster": cluster.name,
                "completed_at": time.time() if taken_at is None else taken_at,
                "namespaces": sorted(cluster.namespaces),
                "deployments": {f"{ns}/{d}": {"replicas": dep.replicas, "labels": dict(dep.labels),
                                              "annotations": dict(dep.annotations)}
                                for (ns, d), dep in cluster.deployments.items()},
                "pdbs": {f"{ns}/{p}": {"selector": None if pdb.selector is None else dict(pdb.selector),
                                       "expressions": [dict(e) for e in pdb.expressions], "min_available": pdb.min_available,
                                       "max_unavailable": pdb.max_unavailable}
                         for (ns, p), pdb in cluster.pdbs.items()},
                "objects": sorted(f"{a}/{p}/{ns or '-'}/{n}" for a, p, ns, n in cluster.objects),
            }
        return taken[name]

    def find_backup(self, name: str) -> dict | None:
        return next((taken[name] for taken in self.backups.values() if name in taken), None)

    def start_restore(self, cluster: Cluster, restore: dict) -> None:
        """Velero's restore controller: after a while, bring the backup's namespaces, Deployments
        and PDBs into this cluster (renamed by `namespaceMapping`). What exists already is
        skipped, or overwritten when `existingResourcePolicy` is `update`; everything restored is
        labelled with the restore's and the backup's names, as Velero labels it."""
        spec = restore.get("spec") or {}
        backup = self.find_backup(spec.get("backupName", ""))
        if backup is None:
            restore["status"] = {"phase": "FailedValidation",
                                 "validationErrors": [f"backup {spec.get('backupName')!r} not found in the bucket"]}
            return
        restore["status"] = {"phase": "InProgress"}
        self._spawn(self._run_restore(cluster, restore, backup))

    async def _run_restore(self, cluster: Cluster, restore: dict, backup: dict) -> None:
        await self.pause(cluster, RESTORE_SECONDS)
        spec = restore["spec"]
        mapping: dict[str, str] = spec.get("namespaceMapping") or {}
        update = spec.get("existingResourcePolicy") == "update"
        included = set(spec.get("includedNamespaces") or ["*"])
        excluded = set(spec.get("excludedNamespaces") or []) | set(SYSTEM_NAMESPACES) | {"velero"}
        if "*" not in included:
            excluded |= set(backup["namespaces"]) - included
        restore_labels = {"velero.io/restore-name": restore["metadata"]["name"], "velero.io/backup-name": spec["backupName"]}
        restored = 0
        for source in backup["namespaces"]:
            if source in excluded:
                continue
            namespace = mapping.get(source, source)
            if namespace not in cluster.namespaces:
                cluster.namespaces.add(namespace)
                cluster.namespace_labels[namespace] = dict(restore_labels)
                restored += 1
        for key, item in backup["deployments"].items():
            source, name = key.split("/", 1)
            if source in excluded:
                continue
            namespace = mapping.get(source, source)
            existing = cluster.deployments.get((namespace, name))
            if existing is not None and not update:
                continue
            if existing is not None:
                existing.replicas = item["replicas"]
                existing.annotations = dict(item["annotations"])
            else:
                cluster.deployments[(namespace, name)] = Deployment(
                    namespace=namespace, name=name, replicas=item["replicas"], labels=dict(item["labels"]),
                    annotations=dict(item["annotations"]), metadata_labels=dict(restore_labels))
            restored += 1
        for key, item in backup["pdbs"].items():
            source, name = key.split("/", 1)
            namespace = mapping.get(source, source)
            if source in excluded or ((namespace, name) in cluster.pdbs and not update):
                continue
            cluster.pdbs[(namespace, name)] = Pdb(namespace=namespace, name=name, expressions=list(item.get("expressions") or []),
                                                  selector=None if item["selector"] is None else dict(item["selector"]),
                                                  min_available=item["min_available"], max_unavailable=item["max_unavailable"])
            restored += 1
        cluster.resource_version += 1
        self.reconcile(cluster)
        restore["status"] = {"phase": "Completed", "progress": {"itemsRestored": restored, "totalItems": restored},
                             "completionTimestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}

    def delete_namespace(self, cluster: Cluster, namespace: str) -> None:
        """The namespace and everything in it go (pods are deleted, not evicted: that is what a
        namespace deletion does, so it is no PodDisruptionBudget violation)."""
        if namespace not in cluster.namespaces:
            raise SimError(404, "NotFound", f'namespaces "{namespace}" not found')
        if namespace in SYSTEM_NAMESPACES or namespace == "default":
            raise SimError(403, "Forbidden", f'namespaces "{namespace}" is protected and cannot be deleted')
        cluster.namespaces.discard(namespace)
        cluster.namespace_labels.pop(namespace, None)
        cluster.namespace_annotations.pop(namespace, None)
        for key in [k for k in cluster.deployments if k[0] == namespace]:
            del cluster.deployments[key]
        for key in [k for k in cluster.stateful_sets if k[0] == namespace]:
            del cluster.stateful_sets[key]
        for key in [k for k in cluster.pdbs if k[0] == namespace]:
            del cluster.pdbs[key]
        for key in [k for k in cluster.pods if k[0] == namespace]:
            del cluster.pods[key]
        for object_key in [k for k in cluster.objects if k[2] == namespace]:
            del cluster.objects[object_key]
        cluster.resource_version += 1

    def delete_deployment(self, cluster: Cluster, namespace: str, name: str) -> None:
        """The Deployment and its pods go (deleted, not evicted, as the garbage collector does)."""
        if cluster.deployments.pop((namespace, name), None) is None:
            raise SimError(404, "NotFound", f'deployments.apps "{name}" not found')
        for key in [k for k, pod in cluster.pods.items() if pod.namespace == namespace and pod.owner == name
                    and pod.owner_kind == "ReplicaSet"]:
            del cluster.pods[key]
        cluster.resource_version += 1

    def put_deployment(self, cluster: Cluster, namespace: str, name: str, manifest: dict) -> Deployment:
        """Create a Deployment from a manifest a client sent, or bring one up to it: its replicas,
        selector, labels and annotations are what the simulator models (the controller does the
        rest: pods on Ready, schedulable nodes with room)."""
        spec, meta = manifest.get("spec") or {}, manifest.get("metadata") or {}
        replicas = spec.get("replicas", 1)
        if not isinstance(replicas, int) or replicas < 0:
            raise SimError(422, "Invalid", f"spec.replicas: Invalid value: {replicas!r}: must be greater than or equal to 0")
        selector = (spec.get("selector") or {}).get("matchLabels") or {}
        template = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
        if not selector or any(template.get(k) != v for k, v in selector.items()):
            raise SimError(422, "Invalid", 'Deployment.apps "' + name + '" is invalid: spec.template.metadata.labels:'
                           " Invalid value: `selector` does not match template `labels`")
        namespace_known = namespace in cluster.namespaces
        if not namespace_known:
            raise SimError(404, "NotFound", f'namespaces "{namespace}" not found')
        containers = ((spec.get("template") or {}).get("spec") or {}).get("containers") or []
        cpu_m, memory_mi = arithmetic.pod_requests(containers)
        existing = cluster.deployments.get((namespace, name))
        if existing is None:
            existing = cluster.deployments[(namespace, name)] = Deployment(
                namespace=namespace, name=name, replicas=replicas, labels=dict(selector),
                annotations={k: str(v) for k, v in (meta.get("annotations") or {}).items()},
                metadata_labels={k: str(v) for k, v in (meta.get("labels") or {}).items()},
                cpu_m=cpu_m, memory_mi=memory_mi, containers=[dict(c) for c in containers])
        else:
            existing.cpu_m, existing.memory_mi = cpu_m, memory_mi
            existing.containers = [dict(c) for c in containers]
            existing.replicas = replicas
            existing.annotations = {k: str(v) for k, v in (meta.get("annotations") or {}).items()}
            existing.metadata_labels = {k: str(v) for k, v in (meta.get("labels") or {}).items()}
        cluster.resource_version += 1
        self.reconcile(cluster)
        return existing

    def put_pdb(self, cluster: Cluster, namespace: str, name: str, manifest: dict) -> Pdb:
        """Create a PodDisruptionBudget from a manifest (a server-side apply), or bring one up to it."""
        spec, meta = manifest.get("spec") or {}, manifest.get("metadata") or {}
        selector = spec.get("selector")
        if ("minAvailable" in spec) == ("maxUnavailable" in spec):
            raise SimError(422, "Invalid", f'PodDisruptionBudget.policy "{name}" is invalid: spec: Invalid value:'
                           " minAvailable and maxUnavailable cannot be both set (and one is needed)")
        if namespace not in cluster.namespaces:
            raise SimError(404, "NotFound", f'namespaces "{namespace}" not found')
        blocked = cluster.pdbs[(namespace, name)].blocked if (namespace, name) in cluster.pdbs else False
        pdb = cluster.pdbs[(namespace, name)] = Pdb(
            namespace=namespace, name=name,
            selector=None if selector is None else {k: str(v) for k, v in (selector.get("matchLabels") or {}).items()},
            expressions=[] if selector is None else [dict(e) for e in selector.get("matchExpressions") or []],
            min_available=spec.get("minAvailable"), max_unavailable=spec.get("maxUnavailable"), blocked=blocked,
            labels={k: str(v) for k, v in (meta.get("labels") or {}).items()},
            annotations={k: str(v) for k, v in (meta.get("annotations") or {}).items()})
        cluster.resource_version += 1
        return pdb

    def delete_pdb(self, cluster: Cluster, namespace: str, name: str) -> None:
        if cluster.pdbs.pop((namespace, name), None) is None:
            raise SimError(404, "NotFound", f'poddisruptionbudgets.policy "{name}" not found')
        cluster.resource_version += 1

    def patch_deployment(self, cluster: Cluster, namespace: str, name: str, patch: dict) -> Deployment:
        """Merge-patch the fields the simulator models: spec.replicas and metadata annotations
        (a null annotation value removes it, as a JSON merge patch does)."""
        deployment = cluster.deployments.get((namespace, name))
        if deployment is None:
            raise SimError(404, "NotFound", f'deployments.apps "{name}" not found')
        replicas = (patch.get("spec") or {}).get("replicas")
        if replicas is not None:
            if not isinstance(replicas, int) or replicas < 0:
                raise SimError(422, "Invalid", f"spec.replicas: Invalid value: {replicas!r}: must be greater than or equal to 0")
            deployment.replicas = replicas
        for key, value in ((patch.get("metadata") or {}).get("annotations") or {}).items():
            if value is None:
                deployment.annotations.pop(key, None)
            else:
                deployment.annotations[key] = str(value)
        cluster.resource_version += 1
        self.reconcile(cluster)
        return deployment

    # ------------------------------------------------------------------ traffic

    def traffic_records(self, cluster: str | None = None) -> dict[str, dict]:
        return {service: record for service, record in sorted(self.traffic.items())
                if cluster is None or cluster in record["weights"]}

    def set_traffic(self, service: str, weights: dict[str, int], change_id: str) -> dict:
        """Point a service's traffic at clusters by weight. A change id seen before returns the
        record as that change left it, so a retried shift never shifts twice."""
        record = self.traffic.get(service)
        if record is None:
            raise SimError(404, "NotFound", f"no traffic record for service {service!r}")
        if any(change["change_id"] == change_id for change in record["changes"]):
            return record
        if any(weight < 0 for weight in weights.values()) or not any(weights.values()):
            raise SimError(400, "InvalidParameterException",
                           f"weights for {service} must be non-negative and send traffic somewhere: {weights}")
        record["weights"] = dict(weights)
        record["changes"].append({"change_id": change_id, "at": time.time(), "weights": dict(weights)})
        return record

    def api_server(self, cluster: str) -> str:
        """The HTTPS address of a cluster's API server (what EKS calls its endpoint)."""
        if self.kube_url is None:
            raise SimError(503, "ServiceUnavailable", "the simulator's TLS listener for cluster API servers is not up")
        return f"{self.kube_url}/k8s/{cluster}"

    def cluster_operation(self, cluster: Cluster, kind: str) -> Update | None:
        return next((u for u in reversed(list(cluster.updates.values())) if u.type == kind), None)

    def delete_cluster(self, cluster: Cluster, *, with_pools: bool) -> Update:
        """EKS refuses while node groups remain (with_pools=False); GKE and AKS take them along."""
        if cluster.status == "DELETING":
            deleting = self.cluster_operation(cluster, "DeleteCluster")
            assert deleting is not None, "a cluster being deleted has its delete operation"
            return deleting
        if cluster.pools and not with_pools:
            raise SimError(409, "ResourceInUseException",
                           f"Cluster has nodegroups attached: {', '.join(sorted(cluster.pools))}")
        cluster.status = "DELETING"
        operation = self._new_update(cluster, kind="DeleteCluster", nodegroup=None, params=[], token=None)
        self._spawn(self._run_cluster_delete(cluster, operation))
        return operation

    async def _run_cluster_delete(self, cluster: Cluster, operation: Update) -> None:
        await self.pause(cluster, CLUSTER_DELETE_SECONDS)
        for node in list(cluster.nodes):
            cluster.nodes.pop(node)
        self.clusters.pop(cluster.name, None)
        operation.status = "Successful"

    # ------------------------------------------------------------------ report

    def report(self, cluster: str | None = None) -> dict:
        def mine(records: list[dict]) -> list[dict]:
            return [r for r in records if cluster is None or r["cluster"] == cluster]

        now = self.now()
        clusters = {}
        for c in self.clusters.values():
            if cluster is not None and c.name != cluster:
                continue
            clusters[c.name] = {
                "provider": c.provider,
                "region": c.region,
                "control_plane_version": c.version,
                "node_pools": {p.name: {"version": p.version, "node_image": p.image, "status": p.status,
                                        "nodes": len(c.pool_nodes(p.name)), "size": p.size, "labels": dict(p.labels),
                                        "taints": [dict(t) for t in p.taints], "settings": dict(p.settings)}
                               for p in c.pools.values()},
                "addons": dict(c.addons),
                "nodes": {
                    n.name: {"pool": n.pool, "version": n.version, "image": n.image, "ready": n.ready(now), "unschedulable": n.unschedulable,
                             "pods": len(c.pods_on(n.name)), "labels": dict(n.labels)}
                    for n in sorted(c.nodes.values(), key=lambda n: n.name)
                },
                "pods": len(c.pods),
                "pods_pending": sum(1 for p in c.pods.values() if p.node is None),
                "pods_ready": sum(1 for p in c.pods.values() if p.ready(now)),
                "status": c.status,
                "namespaces": sorted(c.namespaces),
                "objects": sorted(f"{api}/{plural}/{ns or '-'}/{name}" for api, plural, ns, name in c.objects),
                "kube_calls": dict(c.kube_calls),
                "held_drains": {node: {"budgets": held["budgets"], "pods": held["pods"], "refusals": held["refusals"],
                                       "seconds": round(held["seconds"], 3)}
                                for node, held in c.held_drains.items()},
            }
        return {
            "pdb_violations": mine(self.pdb_violations),
            "skew_violations": mine(self.skew_violations),
            "double_drains": mine(self.double_drains),
            "pods_deleted": mine(self.pods_deleted),
            "tokens_issued": self.tokens_issued,
            "clusters": clusters,
            "backups": {name: sorted(taken) for name, taken in self.backups.items() if cluster is None or name == cluster},
            "traffic": {service: {"weights": record["weights"], "changes": len(record["changes"])}
                        for service, record in self.traffic_records(cluster).items()},
            "unreachable_regions": sorted(self.unreachable_regions),
            "cloud_rate_limits": dict(self.cloud_rate_limits),
            "throttled_requests": dict(self.throttled_requests),
        }
