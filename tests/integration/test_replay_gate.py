"""The replay gate (`regatta deploy check`, workers/replay_gate.py): the open runs of the live namespace replayed on
this build's workflow code before it takes over. An AccessGrant waiting for its approval replays on today's code;
on a build whose AccessGrant was changed without a `workflow.patched` branch (a timer its history never had) the gate
names the run and the event, and the CLI exits 1."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import time

from temporalio import workflow

from regatta.models import AccessGrantInput, AccessGrantResult
from regatta.temporal.operations import start
from tests.conftest import REGATTA
from workers import replay_gate
from workers.main import WORKFLOWS
from workflows.access_grant import AccessGrant


@workflow.defn(name="AccessGrant")
class ChangedAccessGrant(AccessGrant):
    """What a careless release would ship: a step added at the top of the runbook, unpatched."""

    @workflow.run
    async def run(self, input: AccessGrantInput | dict) -> AccessGrantResult:
        await workflow.sleep(0.01)
        return await super().run(input)


async def test_the_gate_replays_open_runs_and_names_the_run_and_event_a_changed_build_would_break(
        client, worker, queue_settings, add_cluster, inventory):
    cluster = add_cluster("gate", env="prod")
    handle = await start(queue_settings, AccessGrantInput(
        cluster=cluster, role="view", duration_seconds=600, reason="INC-20", requested_by="ana"),
        cluster=inventory.get_cluster(cluster))
    deadline = time.monotonic() + 30
    while (await handle.query("progress", result_type=dict))["phase"] != "awaiting_approval":
        assert time.monotonic() < deadline
        await asyncio.sleep(0.1)
    scope = f"WorkflowId = '{handle.id}'"

    today = await replay_gate.check(client, closed_sample=0, scope=scope)
    assert [(v.workflow_id, v.workflow_type, v.open, v.verdict) for v in today] == [
        (handle.id, "AccessGrant", True, "replays")]

    changed = [w for w in WORKFLOWS if w is not AccessGrant] + [ChangedAccessGrant]
    verdicts = await replay_gate.check(client, workflows=changed, closed_sample=0, scope=scope)
    assert len(verdicts) == 1 and verdicts[0].verdict == "breaks" and verdicts[0].workflow_id == handle.id
    # the first command the changed code gives differs: its timer meets the history's first activity, event 5
    # (1 started, 2-4 the first workflow task, 5 the inventory read the recorded run scheduled first)
    assert verdicts[0].event_id == 5 and "Nondeterminism error" in verdicts[0].detail
    assert replay_gate.summary(verdicts) == {"replayed": 1, "open": 1, "breaks": 1, "closed_breaks": 0, "promotable": False}

    # the command an operator runs with the new build, on the live namespace: today's build may take over
    checked = await asyncio.to_thread(subprocess.run, [REGATTA, "deploy", "check", "--scope", scope, "--closed", "0",
                                                       "--output", "json"], capture_output=True, text=True, timeout=120,
                                      env={**os.environ, **queue_settings.as_env()})
    assert checked.returncode == 0, checked.stderr
    found = json.loads(checked.stdout)
    assert found["promotable"] is True and found["replayed"] == 1 and found["runs"][0]["workflow_id"] == handle.id
    await handle.execute_update("revoke", {"requested_by": "ana", "reason": "gate test done"}, result_type=dict)
