"""`regatta placement` and `regatta cluster evacuate` as an operator drives them, against the dev
server, the simulator and the worker: the plan names who is chosen and who is not, the rollout
places the application, `placement show` says why each cluster holds what it holds, an
evacuation moves it off a cluster, and the refusals exit 2 with what to do."""

from __future__ import annotations

import json

import yaml

from tests.cli_runs import regatta
from tests.integration.placements import Fleet


async def test_an_application_placed_explained_and_evacuated_from_the_command_line(
        queue_settings, simulator, inventory, settings, worker, tmp_path):
    fleet = Fleet(simulator, inventory, settings)
    names = fleet.add({"a": ("m5.xlarge", 2, "us-east-1"), "b": ("m5.large", 2, "us-east-1"),
                       "c": ("m5.large", 1, "us-west-2")})
    spec = fleet.bundle({"pick": "count", "count": 2, "divide": "weight"}, budget={"maxUnavailable": 1})
    bundle_file = tmp_path / "app.yaml"
    bundle_file.write_text(yaml.safe_dump(spec.model_dump(mode="json", exclude_none=True)))

    plan = await regatta(queue_settings, "policy", "rollout", "--file", str(bundle_file), "--plan-only", "--output", "json")
    assert plan.returncode == 0, plan.stderr
    decisions = {d["cluster"]: d for d in json.loads(plan.stdout)["decisions"] if d["cluster"] in names.values()}
    assert decisions[names["a"]]["included"] and "chosen: score" in decisions[names["a"]]["because"]
    assert decisions[names["c"]]["because"].startswith("not placed: score")

    rolled = await regatta(queue_settings, "policy", "rollout", "--file", str(bundle_file), "--wait", "--ticket", "CHG-P1")
    assert rolled.returncode == 0, rolled.stdout + rolled.stderr
    assert fleet.running() == {"a": 3, "b": 3, "c": 0}

    shown = await regatta(queue_settings, "placement", "show", fleet.app)
    assert shown.returncode == 0, shown.stderr
    assert "free CPU" in shown.stdout and names["c"] in shown.stdout and "not chosen" in shown.stdout
    as_json = await regatta(queue_settings, "placement", "show", fleet.app, "--output", "json")
    assert {s["cluster"]: s["replicas"] for s in json.loads(as_json.stdout)["chosen"]} == {
        names["a"]: {fleet.workload: 3}, names["b"]: {fleet.workload: 3}}
    listed = await regatta(queue_settings, "placement", "list")
    assert listed.returncode == 0 and fleet.app in listed.stdout

    evacuated = await regatta(queue_settings, "cluster", "evacuate", names["b"], "--reason", "replaced blue/green",
                              "--ticket", "CHG-P2", "--wait")
    assert evacuated.returncode == 0, evacuated.stdout + evacuated.stderr
    assert fleet.shares() == {"a": 3, "c": 3}  # pick 2: c replaces b
    assert fleet.running() == {"a": 3, "b": 0, "c": 3}

    again = await regatta(queue_settings, "cluster", "evacuate", names["b"], "--reason", "twice")
    assert again.returncode == 2 and "nothing to evacuate" in again.stderr, again.stdout + again.stderr
    unknown = await regatta(queue_settings, "placement", "show", "no-such-app")
    assert unknown.returncode == 2 and "is not placed" in unknown.stderr
    refused = await regatta(queue_settings, "decommission", names["a"], "--ticket", "CHG-P3")
    assert refused.returncode == 2 and f"runs placed applications ({fleet.app}): pass --evacuate" in refused.stderr
