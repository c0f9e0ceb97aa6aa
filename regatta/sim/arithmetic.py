"""The simulator's own arithmetic: Kubernetes versions, PodDisruptionBudget floors and the
version-skew policy, written here from the Kubernetes documentation rather than imported from
`regatta.rules`, so a bug in Regatta's decisions cannot pass on both sides of a test (an
import-linter contract keeps the simulator off `regatta.rules`).

- Versions: the API server and kubelets report `v1.30.4`, clouds `1.30.4-eks-a1b2c3` or
  `1.31.5-gke.1200`; only major and minor matter here.
- A budget's floor is the disruption controller's desiredHealthy: `minAvailable` as given, or
  `expectedPods - maxUnavailable`; percentages of the expected pods round up (the controller's
  GetScaledValueFromIntOrPercent with roundUp).
- Skew (Kubernetes 1.28 and later): a kubelet is never newer than the API server and at most
  three minor versions older.
"""

from __future__ import annotations

import math
import re

KUBELET_MAY_TRAIL_BY = 3
_VERSION = re.compile(r"v?(\d+)\.(\d+)")


def minor(version: str) -> tuple[int, int]:
    found = _VERSION.match(version.strip())
    if found is None:
        raise ValueError(f"not a Kubernetes version: {version!r}")
    return int(found[1]), int(found[2])


def minor_text(version: str) -> str:
    major, minor_ = minor(version)
    return f"{major}.{minor_}"


def _scaled_up(value: int | str, total: int) -> int:
    if isinstance(value, str) and value.strip().endswith("%"):
        return math.ceil(total * int(value.strip()[:-1]) / 100)
    return int(value)


def desired_healthy(*, min_available: int | str | None, max_unavailable: int | str | None, expected: int) -> int:
    """How many of the budget's pods must stay healthy."""
    if max_unavailable is not None:
        return max(expected - _scaled_up(max_unavailable, expected), 0)
    if min_available is not None:
        return _scaled_up(min_available, expected)
    return 0


def skew_breaks(*, api_server: str, kubelets: dict[str, str]) -> list[str]:
    """Each kubelet that breaks the skew policy against this API server, in words."""
    server = minor(api_server)
    broken = []
    for node in sorted(kubelets):
        kubelet = minor(kubelets[node])
        if kubelet > server:
            broken.append(f"node {node}: kubelet {kubelets[node]} is newer than control plane {api_server}")
        elif server[0] == kubelet[0] and server[1] - kubelet[1] > KUBELET_MAY_TRAIL_BY:
            broken.append(f"node {node}: kubelet {kubelets[node]} is more than {KUBELET_MAY_TRAIL_BY} minors behind"
                          f" control plane {api_server}")
    return broken


_QUANTITY = re.compile(r"^([0-9.]+)([a-zA-Z]*)$")
_SUFFIX = {"": 1, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}


def quantity(text: str | int | float) -> float:
    """A Kubernetes resource quantity ("250m", "1.5", "512Mi", "2Gi") as a plain number."""
    found = _QUANTITY.match(str(text).strip())
    if found is None or found[2] not in _SUFFIX:
        raise ValueError(f"not a resource quantity: {text!r}")
    return float(found[1]) * _SUFFIX[found[2]]


def pod_requests(containers: list[dict]) -> tuple[int, int]:
    """What a pod's containers request, summed: (CPU millicores, memory MiB)."""
    cpu = memory = 0.0
    for container in containers:
        requests = ((container or {}).get("resources") or {}).get("requests") or {}
        cpu += quantity(requests.get("cpu", 0))
        memory += quantity(requests.get("memory", 0))
    return math.ceil(cpu * 1000 - 1e-9), math.ceil(memory / 2**20 - 1e-9)


def selects(match_labels: dict[str, str] | None, expressions: list[dict], labels: dict[str, str]) -> bool:
    """A policy/v1 label selector against a pod's labels, as the eviction subresource reads it: a null
    selector selects nothing, an empty one every pod; matchLabels and each of matchExpressions (In, NotIn,
    Exists, DoesNotExist) must all hold; an operator it does not know selects nothing."""
    if match_labels is None:
        return False
    if any(labels.get(key) != value for key, value in match_labels.items()):
        return False
    for requirement in expressions:
        key, operator, values = str(requirement.get("key")), requirement.get("operator"), requirement.get("values") or []
        has = key in labels
        holds = {"In": has and labels.get(key) in values, "NotIn": not (has and labels.get(key) in values),
                 "Exists": has, "DoesNotExist": not has}.get(str(operator), False)
        if not holds:
            return False
    return True


_GO_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")  # "ms" before "m": 500ms is half a second, not 500 minutes
_GO_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}


def duration_seconds(text: str) -> float:
    """A duration as Go writes it (metav1.Duration, kubectl's --timeout): "10m", "1h30m", "90s", "500ms"."""
    return sum(float(amount) * _GO_UNITS[unit] for amount, unit in _GO_DURATION.findall(text))
