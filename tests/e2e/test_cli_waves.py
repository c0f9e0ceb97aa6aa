"""The CLI's patch-wave side as an operator drives it: plans, waves started and refused, the simulated fleet's clock.
(Split from test_cli.py so the two run side by side; schedules and holds are in test_cli_schedules.py.)"""

from __future__ import annotations

from tests.cli_runs import regatta, status_until
from tests.conftest import sim_report


async def test_wave_plan_only_start_and_refusals(queue_settings, add_cluster, worker, tmp_path, simulator):
    import uuid

    tag = uuid.uuid4().hex[:6]
    canary = add_cluster("wvcli", env="canary", labels={"wave": tag}, pools=1, nodes=2)
    done = add_cluster("wvcli", env="canary", labels={"wave": tag}, version="1.31", pools=1, nodes=2)
    wave = tmp_path / "wave.yaml"
    wave.write_text(f"""\
name: cli-{tag}
target_version: "1.31"
selector: {{labels: {{wave: "{tag}"}}}}
stages:
- name: canary
  selector: {{environment: canary}}
upgrade_settings: {{poll_interval_seconds: 0.05, health_gate_timeout_seconds: 20, activity_heartbeat_timeout_seconds: 5}}
""")
    plan = await regatta(queue_settings, "wave", "start", "--file", str(wave), "--plan-only")
    assert plan.returncode == 0, plan.stderr
    assert f"cli-{tag} to 1.31: 2 clusters in 1 stage" in plan.stdout
    assert canary in plan.stdout and done in plan.stdout and "at_target" in plan.stdout

    started = await regatta(queue_settings, "wave", "start", "--file", str(wave), "--wait", "--requested-by", "sre-alice")
    assert started.returncode == 0, started.stderr
    assert f"cli-{tag} done: 1 at_target, 1 succeeded" in started.stdout
    assert sim_report(simulator, canary)["clusters"][canary]["control_plane_version"] == "1.31"
    status = await regatta(queue_settings, "op", "status", f"wave-cli-{tag}")
    assert status.returncode == 0 and "canary" in status.stdout and "PatchWave: COMPLETED" in status.stdout

    wave.write_text(wave.read_text().replace("- name: canary", "- name: canary\n  concurrency: 0"))
    bad = await regatta(queue_settings, "wave", "start", "--file", str(wave))
    assert bad.returncode == 2 and f"{wave}:6: stages.0.concurrency: Input should be greater than or equal to 1" in bad.stderr
    both = await regatta(queue_settings, "wave", "start", "--file", str(wave), "--to", "1.31")
    assert both.returncode == 2 and "not both" in both.stderr
    neither = await regatta(queue_settings, "wave", "start")
    assert neither.returncode == 2 and "--file wave.yaml, or --selector" in neither.stderr
    quick = await regatta(queue_settings, "wave", "start", "--selector", f"wave={tag}", "--to", "1.31", "--plan-only")
    assert quick.returncode == 0 and "2 clusters in 1 stage" in quick.stdout and "Traceback" not in bad.stderr + quick.stderr


async def test_sim_clock_moves_the_calendar_that_plans_read_and_refuses_nonsense(
        queue_settings, add_cluster, simulator, sim_clock, worker, tmp_path):
    import uuid

    tag = uuid.uuid4().hex[:6]
    cluster = add_cluster("wvclk", env="prod", labels={"wave": tag}, pools=1, nodes=1)
    wave = tmp_path / "wave.yaml"
    wave.write_text(f"""\
name: clock-{tag}
target_version: "1.31"
selector: {{labels: {{wave: "{tag}"}}}}
stages: [{{name: prod}}]
maintenance_windows: [{{days: [tue], start: "02:00", duration_minutes: 60, timezone: UTC}}]
""")
    set_to = await regatta(queue_settings, "sim-clock", "--set", "2026-12-07T23:00:00Z")  # a Monday night
    assert set_to.returncode == 0 and "fleet clock: 2026-12-07T23:00" in set_to.stdout
    plan = await regatta(queue_settings, "wave", "start", "--file", str(wave), "--plan-only")
    assert plan.returncode == 0 and cluster in plan.stdout and "2026-12-08 02:00" in plan.stdout, plan.stdout
    moved = await regatta(queue_settings, "sim-clock", "--advance", "4h")  # Tuesday 03:00, inside the window
    assert moved.returncode == 0 and "fleet clock: 2026-12-08T03:00" in moved.stdout
    plan = await regatta(queue_settings, "wave", "start", "--file", str(wave), "--plan-only")
    assert plan.returncode == 0 and "2026-12-08 03:00" in plan.stdout, plan.stdout

    # A running wave whose cluster waits for next Tuesday's window: --to-next moves the clock there, and it starts.
    await regatta(queue_settings, "sim-clock", "--set", "2026-12-08T05:00:00Z")
    started = await regatta(queue_settings, "wave", "start", "--file", str(wave), "--ticket", "CHG-CLOCK")
    assert started.returncode == 0, started.stdout + started.stderr
    await status_until(queue_settings, f"wave-clock-{tag}", lambda d: any(
        c["status"] == "waiting_window" for s in (d["progress"] or {}).get("stages", []) for c in s["clusters"]))
    nudged = await regatta(queue_settings, "sim-clock", "--to-next", f"wave-clock-{tag}")
    assert nudged.returncode == 0, nudged.stderr
    assert ("fleet clock: 2026-12-15T02:00:01" in nudged.stdout
            and f"moved to when {cluster} may start (its maintenance window opens)" in nudged.stdout), nudged.stdout
    await status_until(queue_settings, f"wave-clock-{tag}", lambda d: d["status"] == "COMPLETED")
    over = await regatta(queue_settings, "sim-clock", "--to-next", f"wave-clock-{tag}")
    assert over.returncode == 2 and "the wave is COMPLETED, not running" in over.stderr
    unknown = await regatta(queue_settings, "sim-clock", "--to-next", "wave-nothing-here")
    assert unknown.returncode == 2 and "no operation wave-nothing-here" in unknown.stderr

    unit = await regatta(queue_settings, "sim-clock", "--advance", "2 weeks")
    assert unit.returncode == 2 and "e.g. 90m, 2h or 3d" in unit.stderr
    both = await regatta(queue_settings, "sim-clock", "--advance", "2h", "--wall")
    assert both.returncode == 2 and "one of --advance, --set, --wall or --to-next" in both.stderr
    naive = await regatta(queue_settings, "sim-clock", "--set", "2026-12-08T03:00:00")
    assert naive.returncode == 2 and "with a time zone" in naive.stderr
    real = await regatta(queue_settings, "sim-clock", env={"REGATTA_SIM_URL": ""})
    assert real.returncode == 2 and "a real fleet runs on the wall clock" in real.stderr
    back = await regatta(queue_settings, "sim-clock", "--wall")
    assert back.returncode == 0 and "wall clock +0s" in back.stdout
