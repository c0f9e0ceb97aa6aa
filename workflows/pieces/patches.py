"""The patches of released workflows, behind one marker for the runs that begin now.

Each `workflow.patched(ID)` a run takes costs it a marker in its history and an upsert of the
`TemporalChangeVersion` search attribute (Temporal's core SDK adds one to every patch it records,
and cannot be told not to): a visibility write on the server, like an operator's. A surge upgrade
took four (what one costs the server: benchmarks/patch_markers.py, in docs/benchmarks.md). A run that begins on this release or later takes one, SINCE_ONE_MARKER, and
with it every patch in FOLDED at once; a run that began before replays each patch where it was
recorded, as DESIGN rule 9 asks (their histories stay in tests/histories, `*_before_one_marker`).

Semantics are `workflow.patched`'s: whether a run has SINCE_ONE_MARKER is settled the first time
any folded patch is asked (the SDK keeps the answer for the run), so a run that began before it
keeps the answers it recorded for the rest of its life. A new patch is written `patched(NEW)` and
is not folded until the release that folds it adds its own marker.
"""

from __future__ import annotations

from temporalio import workflow

# The patch under which runs take fewer, larger steps: inventory reads and audit lines as local
# activities, an upgrade step started, waited for and gated in one activity, the preflight's reads
# in one.
FEWER_STEPS = "fewer-steps"

# The patch under which GKE and AKS clusters are created with their first node pool (their clouds refuse a
# cluster born without nodes), and an AKS decommission leaves its System pools to go with the cluster.
FIRST_POOL_WITH_CLUSTER = "first-pool-with-cluster"

# The patch under which an EKS upgrade moves the cluster's managed add-ons after its control plane.
MANAGED_ADDONS = "managed-addons"

# The patch under which an upgrade's preflight holds the clouds' own rules (docs/cloud-conformance.md): it waits
# while the cluster is UPDATING with someone else's change, refuses what the cloud would refuse half way, weighs
# EKS upgrade insights, and names blue/green replacements by the cloud's naming rules.
CLOUD_RULES = "cloud-rules"

# The patch under which an ended run keeps its progress in its memo (workflows/pieces/final_progress.py).
KEPT_IN_MEMO = "final-progress-in-memo"

# The patch under which a fleet clock is read at each look (workflows/pieces/fleet_clock.py).
EACH_LOOK = "fleet-clock-each-look"

# The patch under which an operation does not write again the search attributes its starter set.
TAGS_SET_AT_START = "tags-set-at-start"

# The patch under which the preflight of a managed cluster behind a site agent reads the API versions its clients
# and manifests use (kube.read_api_usage, at the site) for the readiness gate. Elsewhere the gate needs no patch:
# the one preflight read (cloud.read_for_upgrade) brings what it judges, and a run recorded before has none of it.
READINESS_GATE = "readiness-gate"

# The patch under which an upgrade to a target more than one minor above the control plane goes through each minor
# on the way (runs begun before refused it). Asked only of such an upgrade, so one of a single minor takes no marker.
SEVERAL_MINORS = "several-minors"

# The patch under which a cluster labelled backup-before-upgrade gets a Velero backup before each control plane
# moves (a run recorded before read the same label and took none). Asked only for such a cluster.
BACKUP_BEFORE_UPGRADE = "backup-before-upgrade"

# The patch under which a soak is timed on the fleet's clock, as windows are (FleetClock.soak): a simulated fleet's
# clock moved forward ends it. Runs begun before soak on a Temporal timer alone.
SOAKS_ON_FLEET_CLOCK = "soaks-on-fleet-clock"
# The patch under which a wave's stage that asks for approval asks it also when every cluster it will upgrade is held
# or waits at its start (runs begun before asked only when one was pending, so a stage of held clusters went unasked).
APPROVAL_FOR_HELD = "approval-for-held"
# The patch under which a wave attaches its rehearsal when it starts and holds itself against it when it ends (a run
# recorded before did neither).
REHEARSAL_ATTACHED = "rehearsal-attached"
# The patch under which a run that ends revoked, expired or refused (an access grant) delivers its callback notes
# before it ends, as every other ending always did (runs recorded before ended with notes still queued). Asked only at
# those endings, so no other run takes its marker.
EVERY_ENDING_DELIVERED = "every-ending-delivered"
# The patch under which a PolicyRollout gives the bundle to the cluster pending once a slot is free: one skipped while
# it waited for the slot is not given it (runs recorded before gave the one they had looked at before waiting).
SKIP_WHILE_WAITING = "skip-while-waiting"
# The patch under which a fleet sweep's batch names its site in the request (SweepClusters), as every request that acts
# on clusters names where they are reached; runs begun before sent the bare list of names and routed it by hand.
SWEEP_BATCH_TARGETED = "sweep-batch-targeted"
SINCE_ONE_MARKER = "patches-2026-12"

# Every patch released before SINCE_ONE_MARKER.
FOLDED = frozenset({
    FEWER_STEPS, FIRST_POOL_WITH_CLUSTER, MANAGED_ADDONS, CLOUD_RULES, KEPT_IN_MEMO, EACH_LOOK,
    "placed-workloads", "joined-later", "fleet-clock", "sweep-at-sites", "move-displaced-placements", TAGS_SET_AT_START,
})


def patched(patch_id: str) -> bool:
    """`workflow.patched(patch_id)`, answered by SINCE_ONE_MARKER for a folded patch in a run that has it."""
    if patch_id in FOLDED and workflow.patched(SINCE_ONE_MARKER):  # noqa: TID251 (the one place that asks)
        return True
    return workflow.patched(patch_id)  # noqa: TID251
