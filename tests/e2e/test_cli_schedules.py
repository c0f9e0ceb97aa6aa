"""The CLI's schedules and holds as an operator drives them: patch schedules firing on their calendar, maintenance
holds and the forecast, a scheduled wave leaving a held cluster alone. (Split from test_cli_waves.py so the two run
side by side.)"""

from __future__ import annotations

import asyncio
import json

from tests.cli_runs import regatta, status_until
from tests.conftest import sim_report


async def test_patch_schedules_fire_on_their_calendar_skip_freezes_and_sweeps_record_capacity(
        queue_settings, add_cluster, worker, tmp_path, client):
    import uuid
    from datetime import UTC, datetime, timedelta

    tag = uuid.uuid4().hex[:6]
    cluster = add_cluster("sched", env="dev", labels={"wave": tag}, pools=1, nodes=2)
    now = datetime.now(UTC)
    wave = tmp_path / "wave.yaml"
    wave.write_text(f"""\
name: sched-{tag}
target_version: "1.31"
selector: {{labels: {{wave: "{tag}"}}}}
stages: [{{name: all}}]
freezes: [{{name: launch, start: "{(now - timedelta(hours=1)).isoformat()}", end: "{(now + timedelta(days=1)).isoformat()}"}}]
""")
    created = await regatta(queue_settings, "schedule", "create", tag, "--file", str(wave), "--days", "tue",
                            "--week-of-month", "2", "--at", "02:00", "--timezone", "Europe/Berlin")
    assert created.returncode == 0, created.stderr
    assert f"created schedule patch-{tag}" in created.stdout and "week 2 tue 02:00 Europe/Berlin" in created.stdout
    listing = await regatta(queue_settings, "schedule", "list", "--output", "json")
    assert listing.returncode == 0, listing.stderr
    listed = json.loads(listing.stdout)
    mine = next(s for s in listed if s["id"] == f"patch-{tag}")
    for fire in mine["next"]:  # the second Tuesday of a month, 02:00 in Berlin
        local = datetime.fromisoformat(fire).astimezone(__import__("zoneinfo").ZoneInfo("Europe/Berlin"))
        assert local.weekday() == 1 and 8 <= local.day <= 14 and (local.hour, local.minute) == (2, 0)

    again = await regatta(queue_settings, "schedule", "create", tag, "--file", str(wave), "--days", "tue")
    assert again.returncode == 2 and "exists already" in again.stderr
    for bad, says in ((["--days", "tuesday"], "days must be among"), (["--days", "tue", "--at", "25:00"], "not a time of day"),
                      (["--days", "tue", "--timezone", "Mars/Base"], "unknown time zone")):
        refused = await regatta(queue_settings, "schedule", "create", f"x{tag}", "--file", str(wave), *bad)
        assert refused.returncode == 2 and says in refused.stderr, refused.stderr

    # Fired during the freeze, the wave ends at once and says why; the cluster is untouched.
    assert (await regatta(queue_settings, "schedule", "trigger", f"patch-{tag}")).returncode == 0
    run = None
    for _ in range(100):
        runs = [w async for w in client.list_workflows('WorkflowType = "PatchWave"') if w.id.startswith(f"wave-sched-{tag}")]
        if runs:
            run = runs[0]
            break
        await asyncio.sleep(0.1)
    assert run is not None, "the schedule started no wave"
    result = await client.get_workflow_handle(run.id).result()
    assert result["outcome"] == "not_started" and "the freeze launch is in force" in result["message"]

    assert (await regatta(queue_settings, "schedule", "pause", f"patch-{tag}")).returncode == 0
    paused = json.loads((await regatta(queue_settings, "schedule", "list", "--output", "json")).stdout)
    assert next(s for s in paused if s["id"] == f"patch-{tag}")["paused"]
    assert (await regatta(queue_settings, "schedule", "delete", f"patch-{tag}")).returncode == 0
    gone = await regatta(queue_settings, "schedule", "delete", f"patch-{tag}")
    assert gone.returncode == 2 and "no schedule" in gone.stderr

    sweep = await regatta(queue_settings, "schedule", "sweep", "--every-minutes", "60", "--selector", f"wave={tag}")
    assert sweep.returncode == 0, sweep.stderr
    try:
        assert (await regatta(queue_settings, "schedule", "trigger", "fleet-sweep")).returncode == 0
        from regatta.inventory import Inventory

        swept = Inventory(queue_settings.database_url)
        for _ in range(200):  # polled in this process; the CLI is asked once it is there
            if swept.get_cluster(cluster).pods_capacity is not None:
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError('test_cli_waves.py:115: what this loop waited for never came')
        record = {r["name"]: r for r in json.loads((await regatta(queue_settings, "clusters", "list", "--output", "json",
                                                                 "--selector", f"wave={tag}")).stdout)}[cluster]
        assert record["pods_capacity"] == 2 * 29 and record["health"] == "healthy"
        table = await regatta(queue_settings, "clusters", "list", "--selector", f"wave={tag}")
        assert f"/{2 * 29}" in table.stdout
    finally:
        await regatta(queue_settings, "schedule", "delete", "fleet-sweep")


async def test_holds_and_the_forecast_from_the_cli(queue_settings, add_cluster, simulator, sim_clock, worker, tmp_path):
    """`regatta cluster hold|release`, the hold in `clusters list`, a direct upgrade refused on a
    held cluster, and `wave plan` / `wave forecast` answering when each cluster will be touched."""
    import uuid
    from datetime import datetime, timedelta

    tag = uuid.uuid4().hex[:6]
    sim_clock(now="2026-12-07T09:00:00+00:00")  # a Monday
    free = add_cluster("wvfc", env="prod", labels={"wave": tag}, pools=1, nodes=1)
    held = add_cluster("wvfc", env="prod", labels={"wave": tag}, pools=1, nodes=1)
    stray = add_cluster("wvfc", env="dev", labels={"wave": tag}, pools=1, nodes=1)

    hold = await regatta(queue_settings, "cluster", "hold", held, "--until", "2026-12-09T09:00:00Z", "--reason", "year-end audit",
                         "--held-by", "sre-maria")
    assert hold.returncode == 0 and f"{held} is held until 2026-12-09 09:00Z by sre-maria: year-end audit" in hold.stdout
    listed = await regatta(queue_settings, "clusters", "list", "--selector", f"wave={tag}")
    assert listed.returncode == 0 and "until 2026-12-09 09:00Z" in listed.stdout and "year-end audit" in listed.stdout
    as_json = json.loads((await regatta(queue_settings, "clusters", "list", "--selector", f"wave={tag}", "--output", "json")).stdout)
    assert {c["name"]: (c["hold"] or {}).get("reason") for c in as_json} == {free: None, held: "year-end audit", stray: None}

    refused = await regatta(queue_settings, "upgrade", "start", held, "--to", "1.31")
    assert refused.returncode == 2 and "is held until 2026-12-09 09:00Z by sre-maria: year-end audit" in refused.stderr
    assert "--override-hold" in refused.stderr

    wave = tmp_path / "wave.yaml"
    wave.write_text(f"""\
name: fc-{tag}
target_version: "1.31"
selector: {{labels: {{wave: "{tag}"}}}}
estimated_upgrade_minutes: 30
stages: [{{name: prod, selector: {{environment: prod}}}}]
""")
    plan = await regatta(queue_settings, "wave", "plan", "--file", str(wave), "--output", "json")
    assert plan.returncode == 0, plan.stderr
    told = {c["cluster"]: c for c in json.loads(plan.stdout)["clusters"]}
    first, done = (datetime.fromisoformat(told[free][k]) for k in ("earliest_touch", "expected_done"))
    assert first.strftime("%Y-%m-%d %H:%M") == "2026-12-07 09:00" and done - first == timedelta(minutes=30)  # the clock runs on
    assert told[held]["earliest_touch"] == "2026-12-09T09:00:00Z" and "year-end audit" in told[held]["because"]
    assert told[stray]["earliest_touch"] is None and "prod needs environment prod (it is dev)" in told[stray]["because"]
    one = await regatta(queue_settings, "wave", "plan", "--file", str(wave), "--cluster", held)
    assert one.returncode == 0 and "Wed 2026-12-09 09:00" in one.stdout and free not in one.stdout
    nobody = await regatta(queue_settings, "wave", "plan", "--file", str(wave), "--cluster", "joined-later")
    assert nobody.returncode == 0 and "joined-later is not in this wave" in nobody.stdout

    started = await regatta(queue_settings, "wave", "start", "--file", str(wave))
    assert started.returncode == 0, started.stderr
    def free_done_held_waits(described: dict) -> bool:
        entries = {c["name"]: c["status"] for s in (described["progress"] or {}).get("stages", []) for c in s["clusters"]}
        return entries.get(free) == "succeeded" and entries.get(held) == "held"

    await status_until(queue_settings, f"wave-fc-{tag}", free_done_held_waits)
    asked = await regatta(queue_settings, "wave", "forecast", f"wave-fc-{tag}", "--output", "json")
    found = {c["cluster"]: c for c in json.loads(asked.stdout)["clusters"]}
    assert found[free]["status"] == "succeeded" and found[held]["status"] == "held", asked.stdout
    assert found[held]["earliest_touch"] == "2026-12-09T09:00:00Z", asked.stdout
    missing = await regatta(queue_settings, "wave", "forecast", "wave-no-such-wave")
    assert missing.returncode == 2 and "no operation wave-no-such-wave" in missing.stderr

    released = await regatta(queue_settings, "cluster", "release", held, "--released-by", "sre-maria")
    assert released.returncode == 0 and "released" in released.stdout
    again = await regatta(queue_settings, "cluster", "release", held)
    assert again.returncode == 2 and "is not held" in again.stderr
    past = await regatta(queue_settings, "cluster", "hold", held, "--until", "2026-01-01T00:00:00Z", "--reason", "x")
    assert past.returncode == 2 and "has already passed" in past.stderr
    garbled = await regatta(queue_settings, "cluster", "hold", held, "--until", "next week", "--reason", "x")
    assert garbled.returncode == 2 and "give a time with a zone" in garbled.stderr
    relative = await regatta(queue_settings, "cluster", "hold", stray, "--until", "90m", "--reason", "migration")
    assert relative.returncode == 0 and f"{stray} is held until 2026-12-07 10:3" in relative.stdout
    no_reason = await regatta(queue_settings, "upgrade", "start", held, "--to", "1.31", "--override-hold", " ")
    assert no_reason.returncode == 2 and "needs a reason" in no_reason.stderr
    sim_clock(advance_seconds=2 * 86400 + 60)  # past the time the wave was told: the held cluster goes
    described = await status_until(queue_settings, f"wave-fc-{tag}", lambda d: d["status"] != "RUNNING")
    assert described["progress"]["phase"] == "succeeded", described
    assert sim_report(simulator, held)["clusters"][held]["control_plane_version"] == "1.31"


async def test_a_scheduled_wave_leaves_a_held_cluster_alone_and_upgrades_the_rest(
        queue_settings, add_cluster, worker, tmp_path, client, simulator):
    import uuid
    from datetime import UTC, datetime, timedelta

    tag = uuid.uuid4().hex[:6]
    free = add_cluster("schold", env="dev", labels={"wave": tag}, pools=1, nodes=1)
    held = add_cluster("schold", env="dev", labels={"wave": tag}, pools=1, nodes=1)
    hold = await regatta(queue_settings, "cluster", "hold", held, "--until", "3d", "--reason", "data migration")
    assert hold.returncode == 0, hold.stderr
    wave = tmp_path / "wave.yaml"
    wave.write_text(f"""\
name: schold-{tag}
target_version: "1.31"
selector: {{labels: {{wave: "{tag}"}}}}
stages: [{{name: all, concurrency: 2}}]
upgrade_settings: {{poll_interval_seconds: 0.05, health_gate_timeout_seconds: 20, activity_heartbeat_timeout_seconds: 5}}
""")
    created = await regatta(queue_settings, "schedule", "create", tag, "--file", str(wave), "--days", "tue")
    assert created.returncode == 0, created.stderr
    try:
        assert (await regatta(queue_settings, "schedule", "trigger", f"patch-{tag}")).returncode == 0
        entries = {}
        for _ in range(300):
            runs = [w async for w in client.list_workflows('WorkflowType = "PatchWave"') if w.id.startswith(f"wave-schold-{tag}")]
            if runs:
                progress = await client.get_workflow_handle(runs[0].id).query("progress")
                entries = {c["name"]: c for s in progress["stages"] for c in s["clusters"]}
                if entries.get(free, {}).get("status") == "succeeded":
                    break
            await asyncio.sleep(0.1)
        assert entries[free]["status"] == "succeeded" and entries[held]["status"] == "held", entries
        assert "data migration" in entries[held]["detail"]
        assert datetime.fromisoformat(entries[held]["earliest_start"]) > datetime.now(UTC) + timedelta(days=2)
        assert sim_report(simulator, held)["clusters"][held]["control_plane_version"] == "1.30"
        await client.get_workflow_handle(runs[0].id).execute_update("abort", {"reason": "test over"})
    finally:
        await regatta(queue_settings, "schedule", "delete", f"patch-{tag}")
