"""Objects a cluster serves that the upgrade-readiness reads judge: an upgrade insight and a FlowSchema of a
version a later minor removes."""

from __future__ import annotations

FLOWSCHEMA = {"apiVersion": "flowcontrol.apiserver.k8s.io/v1beta3", "kind": "FlowSchema",
              "metadata": {"name": "platform-probes"},
              "spec": {"priorityLevelConfiguration": {"name": "workload-low"}, "matchingPrecedence": 1000}}


FINDING = "removed_api:flowcontrol.apiserver.k8s.io/v1beta3/FlowSchema"
