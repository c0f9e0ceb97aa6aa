"""Why an operation stopped or a request was refused, as the one set of names every part of
Regatta uses: the `type` of each non-retryable Temporal ApplicationError a workflow or activity
raises (the Temporal UI, `regatta op status` and the API show it), and what a wave matches when a
child upgrade ends. Scripts may rely on these names; add new ones, never rename one.
"""

from __future__ import annotations

from enum import StrEnum


class ErrorType(StrEnum):
    # the request itself
    INVALID_INPUT = "InvalidInput"
    INVALID_REQUEST = "InvalidRequest"
    WRONG_OPERATION_ID = "WrongOperationId"
    UNKNOWN_CLUSTER = "UnknownCluster"
    CLUSTER_EXISTS = "ClusterExists"
    INVALID_VERSION = "InvalidVersion"
    ILLEGAL_VERSION_JUMP = "IllegalVersionJump"
    ALREADY_AT_VERSION = "AlreadyAtVersion"
    INVALID_NODE_IMAGE = "InvalidNodeImage"
    INVALID_WAVE = "InvalidWave"
    INVALID_HEALTH_CHECK = "InvalidHealthCheck"
    FLEET_RULE_VIOLATION = "FleetRuleViolation"
    # the cluster, before anything changes
    SKEW_VIOLATION = "SkewViolation"
    UNSATISFIABLE_PDB = "UnsatisfiablePdb"
    CLUSTER_BUSY = "ClusterBusy"
    CLUSTER_HELD = "ClusterHeld"
    CLUSTER_UNHEALTHY = "ClusterUnhealthy"
    CLUSTER_IN_USE = "ClusterInUse"
    CLUSTER_NOT_EMPTY = "ClusterNotEmpty"
    CLOUD_RULE_VIOLATION = "CloudRuleViolation"  # the cloud's own rules would refuse it (docs/cloud-conformance.md)
    UPGRADE_INSIGHTS_ERROR = "UpgradeInsightsError"  # EKS upgrade insights report ERROR for the target
    ROLLBACK_INSIGHTS_ERROR = "RollbackInsightsError"  # EKS rollback insights report ERROR or UNKNOWN for the minor back
    NOT_READY_FOR_UPGRADE = "NotReadyForUpgrade"  # blocking readiness findings nobody accepted (regatta/rules/readiness.py)
    HOOK_SAID_NO = "HookSaidNo"  # an upgrade hook's webhook answered no, or never yes, in its time (health.UpgradeHook)
    CANNOT_ROLL_BACK = "CannotRollBack"  # the cloud offers no way back for it, or its window has passed (rules/rollback.py)
    NOT_KEEPING_OLD_POOLS = "NotKeepingOldPools"  # go_back sent to an upgrade that keeps no old pools (now)
    DRAIN_REFUSED = "DrainRefused"  # pods kubectl drain would refuse without --force / --delete-emptydir-data
    NO_WINDOW = "NoWindow"
    # on the way
    HEALTH_GATE_FAILED = "HealthGateFailed"
    HEALTH_CHECK_FAILED = "HealthCheckFailed"
    CLUSTER_NOT_READY = "ClusterNotReady"
    DRAIN_TIMEOUT = "DrainTimeout"
    APPROVAL_TIMEOUT = "ApprovalTimeout"
    CLOUD_OPERATION_FAILED = "CloudOperationFailed"
    CLOUD_OPERATION_TIMEOUT = "CloudOperationTimeout"
    CLOUD_REFUSED = "CloudRefused"
    CLOUD_CHANGED = "CloudChanged"  # the resource changed between Regatta's read and its write (412): read again
    OPERATION_IN_PROGRESS = "OperationInProgress"  # another operation runs on the cluster in the cloud: waited for
    CLOUD_CREDENTIALS_EXPIRED = "CloudCredentialsExpired"  # the cluster's API refused a token even once renewed
    CLOUD_UNREACHABLE = "CloudUnreachable"  # retried, so an operation ends with it only if every retry failed
    KUBE_REFUSED = "KubeRefused"
    NOT_FOUND = "NotFound"
    NOT_MANAGED = "NotManaged"
    UNSUPPORTED_PROVIDER = "UnsupportedProvider"
    INVALID_CREDENTIAL_REF = "InvalidCredentialRef"
    UPGRADE_FAILED = "UpgradeFailed"
    PROVISION_FAILED = "ProvisionFailed"
    DECOMMISSION_FAILED = "DecommissionFailed"
    # disaster recovery
    NOT_A_DR_PAIR = "NotADrPair"
    STANDBY_NOT_READY = "StandbyNotReady"
    ALREADY_FAILED_OVER = "AlreadyFailedOver"
    NOT_FAILED_OVER = "NotFailedOver"
    FENCE_FAILED = "FenceFailed"
    NO_BACKUP = "NoBackup"
    BACKUP_FAILED = "BackupFailed"
    RESTORE_FAILED = "RestoreFailed"
    WORKLOADS_NOT_READY = "WorkloadsNotReady"
    NO_TRAFFIC_MANAGER = "NoTrafficManager"
    TRAFFIC_REFUSED = "TrafficRefused"
    # callbacks
    NO_WEBHOOK_SECRET = "NoWebhookSecret"
    CALLBACK_REFUSED = "CallbackRefused"
    OUTBOUND_REFUSED = "OutboundRefused"
    # the policy plane
    INVALID_BUNDLE = "InvalidBundle"
    BUNDLE_SOURCE_UNREADABLE = "BundleSourceUnreadable"
    FIELD_MANAGER_CONFLICT = "FieldManagerConflict"
    MANIFEST_REFUSED = "ManifestRefused"
    POLICY_ENGINE_UNHEALTHY = "PolicyEngineUnhealthy"
    NOT_OBSERVED = "NotObserved"
    NOT_IN_ROLLOUT = "NotInRollout"
    ROLLOUT_FINISHED = "RolloutFinished"
    ROLLOUT_STOPPING = "RolloutStopping"
    ROLLOUT_STOPPED = "RolloutStopped"  # a controller's rollout (Cluster API, system-upgrade-controller) held by an abort
    # placement of applications
    CLUSTER_UNREACHABLE = "ClusterUnreachable"  # its API server did not answer for the operation's whole timeout
    PLACEMENT_UNSATISFIABLE = "PlacementUnsatisfiable"
    NOT_PLACED = "NotPlaced"
    PLACED_WORKLOADS = "PlacedWorkloads"
    # controls an operation refuses (validators)
    OPERATION_ENDED = "OperationEnded"
    ALREADY_PAUSED = "AlreadyPaused"
    NOT_PAUSED = "NotPaused"
    ABORT_REQUESTED = "AbortRequested"
    TOO_LATE_TO_ABORT = "TooLateToAbort"
    NOT_AWAITING_APPROVAL = "NotAwaitingApproval"
    SELF_APPROVAL = "SelfApproval"
    ACCESS_REFUSED = "AccessRefused"  # the cluster refused to make, hand out or take back a grant
    ALREADY_HANDED_OUT = "AlreadyHandedOut"
    NOT_THE_REQUESTER = "NotTheRequester"
    NOT_GRANTED = "NotGranted"
    WRONG_STAGE = "WrongStage"
    WAVE_FINISHED = "WaveFinished"
    WAVE_STOPPING = "WaveStopping"
    REASON_REQUIRED = "ReasonRequired"
    NOT_IN_WAVE = "NotInWave"
    TOO_LATE_TO_SKIP = "TooLateToSkip"
    NOT_FAILED = "NotFailed"
    STAGE_OVER = "StageOver"
