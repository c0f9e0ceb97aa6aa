"""`regatta dev --persist`: Temporal's state in a file, and the simulated fleet kept running across
a restart of the stack, so a wave carries on through both. In a file of its own so that it runs
beside test_dev.py rather than after it (most of its two minutes is waiting)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import time

import psutil

from tests.conftest import REGATTA
from tests.e2e.dev_stack import start_dev, stop_dev
from tests.shared_http import http


def test_with_persist_a_wave_survives_temporal_killed_and_the_whole_dev_stack_restarted(tmp_path):
    """`regatta dev --persist`: Temporal's state is in a file. Kill -9 Temporal in the middle of a
    wave and the dev stack starts it again on that file; then stop the whole stack (SIGTERM) and
    start it again: the simulated fleet was kept running, as clouds are, and is adopted, and the
    wave finishes every cluster with no PodDisruptionBudget broken, no node drained twice, no skew.
    (An activity whose completion was lost with a server or a worker runs again after its
    start-to-close timeout, which is most of this test's time.)"""
    home = tmp_path / "home"
    dev, described, info, env = start_dev(home, "--persist", "--time-scale", "0.002")
    kept = home / "kept-fleet.json"
    try:
        joined = {**env, **info["env"]}
        assert (home / "temporal.db").exists()
        started = subprocess.run([REGATTA, "wave", "start", "--selector", "env=staging", "--to", "1.35", "--name", "persist",
                                  "--concurrency", "4", "--ticket", "CHG-PERSIST"], env=joined, capture_output=True, text=True,
                                 timeout=60)
        assert started.returncode == 0, started.stdout + started.stderr
        wave_id = next(word.strip(":.,") for word in started.stdout.split() if word.startswith("wave-"))

        def status() -> dict:
            """Where the wave stands, read in this process the way `regatta op status` reads it (a
            CLI start a second would cost the suite a core); the CLI is asked once at the end."""
            from regatta.settings import Settings
            from regatta.temporal.operations import status as read_status

            return asyncio.run(read_status(Settings.from_env(joined), wave_id))

        deadline = time.monotonic() + 120
        while not any(c["status"] not in ("pending", "waiting") for s in status()["progress"]["stages"] for c in s["clusters"]):
            assert time.monotonic() < deadline, "the wave never started a cluster"
            time.sleep(0.5)
        killed = info["pieces"]["temporal"]["pid"]
        os.kill(killed, signal.SIGKILL)
        deadline = time.monotonic() + 60
        while json.loads(described.read_text())["pieces"]["temporal"]["pid"] == killed:
            assert time.monotonic() < deadline, "regatta dev never started Temporal again"
            time.sleep(0.2)
        assert status()["status"] == "RUNNING"

        # The whole stack down and up again; the simulated fleet stays, as the clouds would.
        simulator = info["pieces"]["simulator"]["pid"]
        dev.send_signal(signal.SIGTERM)
        assert dev.wait(timeout=60) == 0
        said = dev.stdout.read()
        assert f"temporal (pid {killed}) exited with code -9; started it again on" in said
        assert "the simulated fleet keeps running, as clouds do" in said and psutil.pid_exists(simulator)
        dev, described, info, env = start_dev(home, "--persist", "--time-scale", "0.002")
        assert info["pieces"]["simulator"]["pid"] == simulator
        joined = {**env, **info["env"]}

        deadline = time.monotonic() + 240
        while (found := status())["status"] == "RUNNING":
            assert time.monotonic() < deadline, found["progress"]
            time.sleep(1)
        shown = subprocess.run([REGATTA, "op", "status", wave_id, "--output", "json"], env=joined, capture_output=True,
                               text=True, timeout=60)
        assert shown.returncode == 0, shown.stdout + shown.stderr
        found = json.loads(shown.stdout)
        assert found["status"] == "COMPLETED", found
        clusters = [c for s in found["progress"]["stages"] for c in s["clusters"]]
        assert len(clusters) >= 2 and {c["status"] for c in clusters} == {"succeeded"}, clusters
        report = http.get(f"{info['env']['REGATTA_SIM_URL']}/sim/report", timeout=10).json()
        assert report["pdb_violations"] == [] and report["double_drains"] == [] and report["skew_violations"] == []
        for cluster in clusters:
            assert report["clusters"][cluster["name"]]["control_plane_version"] == "1.35"
    finally:
        stop_dev(dev, described)
        if kept.exists():  # the fleet the last run kept: this test started it, so it stops it
            with contextlib.suppress(psutil.Error):
                psutil.Process(json.loads(kept.read_text())["pid"]).kill()
