"""When a cluster counts as healthy: what a health gate reads from its nodes and budgets.

Pure: called by the health activities and the fleet sweep.
"""

from __future__ import annotations

from collections.abc import Sequence

from regatta.models import NodeState


def health_problems(
    *, nodes: Sequence[NodeState], deployments: Sequence[tuple[str, int, int]], api_ready: bool
) -> list[str]:
    """What stops a health gate: the API not ready, a node not Ready, a deployment short of replicas.

    Cordoned nodes are not a problem: a blue/green upgrade cordons the old pool on purpose.
    `deployments` holds (namespace/name, desired, ready).
    """
    problems = []
    if not api_ready:
        problems.append("the API server does not answer /readyz")
    problems += [f"node {node.name} is not Ready" for node in nodes if not node.ready]
    problems += [
        f"deployment {name} has {ready}/{desired} replicas ready" for name, desired, ready in deployments if ready < desired
    ]
    return problems
