"""The timing groups: defaults written once and taken by every input they time, the JSON still flat, and one rule for
how long a polling activity may be silent."""

from __future__ import annotations

import pytest

from regatta.models import (
    ClusterRollbackInput,
    ClusterUpgradeInput,
    DecommissionClusterInput,
    DRFailoverInput,
    ProvisionClusterInput,
)
from regatta.models.placement import MoveWorkloadsInput
from regatta.models.policy import BundleSpec
from regatta.models.timings import CloudTimings, GateTimings, KubeTimings, RecoveryTimings, heartbeat_seconds


@pytest.mark.parametrize(("model", "groups"), [
    (ClusterUpgradeInput, (CloudTimings, GateTimings)), (ClusterRollbackInput, (CloudTimings, GateTimings)),
    (ProvisionClusterInput, (CloudTimings,)), (DecommissionClusterInput, (CloudTimings,)),
    (DRFailoverInput, (RecoveryTimings,)), (BundleSpec, (KubeTimings,)), (MoveWorkloadsInput, (KubeTimings,)),
])
def test_each_input_takes_its_groups_defaults_as_written_once(model, groups):
    for group in groups:
        assert issubclass(model, group)
        for name, field in group.model_fields.items():
            assert model.model_fields[name].default == field.default, (model.__name__, name)


def test_the_json_stays_flat_as_the_temporal_ui_and_the_api_take_it():
    upgrade = ClusterUpgradeInput.model_validate({"cluster": "eks-prod-use1", "target_version": "1.31",
                                                  "poll_interval_seconds": 5, "health_gate_timeout_seconds": 60})
    dumped = upgrade.model_dump()
    assert dumped["poll_interval_seconds"] == 5 and dumped["health_gate_timeout_seconds"] == 60
    assert dumped["cloud_operation_timeout_seconds"] == 3600 and "timings" not in dumped
    with pytest.raises(ValueError, match="poll_interval_seconds"):
        ClusterUpgradeInput.model_validate({"cluster": "c", "target_version": "1.31", "poll_interval_seconds": 0})
    with pytest.raises(ValueError, match="poll_interval_seconds"):  # a bundle's clusters are looked at within a minute
        BundleSpec.model_validate({"name": "b", "manifests": [], "poll_interval_seconds": 61})


def test_a_polling_activity_may_be_silent_three_polls_and_never_less_than_its_floor():
    assert heartbeat_seconds(at_least=60, poll_interval_seconds=15) == 60
    assert heartbeat_seconds(at_least=60, poll_interval_seconds=30) == 90
    assert CloudTimings(poll_interval_seconds=40, activity_heartbeat_timeout_seconds=60).heartbeat_seconds() == 120
    # a bundle given or replicas moved: never less than 30 s, whatever the health checks' own silence allows
    assert KubeTimings(poll_interval_seconds=1, activity_heartbeat_timeout_seconds=5).heartbeat_seconds() == 30
    assert RecoveryTimings(poll_interval_seconds=10).heartbeat_seconds() == 60
