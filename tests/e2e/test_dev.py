"""`regatta dev` as a newcomer runs it: every piece starts as its own process, dev.json says
where they are, the fleet is listed, an upgrade runs end to end, a worker killed with -9 is
reported while the rest keep running and a worker started by hand joins, and SIGTERM stops them all."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

import psutil

from tests.conftest import REGATTA
from tests.e2e.dev_stack import free_port, start_dev, stop_dev
from tests.shared_http import http


def test_dev_starts_every_piece_runs_an_upgrade_and_stops_on_sigterm(tmp_path):
    home = tmp_path / "home"
    metrics_port, api_port = free_port(), free_port()
    dev, described, info, env = start_dev(home, "--time-scale", "0", metrics_port=metrics_port, api_port=api_port)
    try:
        pids = [piece["pid"] for piece in info["pieces"].values()]
        assert set(info["pieces"]) == {"temporal", "simulator", "worker", "api"}
        assert info["pieces"]["api"]["address"] == f"http://127.0.0.1:{api_port}"
        assert info["fleet_view"] == f"http://127.0.0.1:{api_port}/ui"
        login = http.get(f"{info['fleet_view']}/login", timeout=10)  # the fleet view answers on the API's port
        assert login.status_code == 200 and 'name="token"' in login.text
        assert all(psutil.pid_exists(pid) for pid in pids)
        joined = {**env, **info["env"]}

        metrics = http.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10)
        assert metrics.status_code == 200 and "temporal" in metrics.text

        # A second stack beside it is refused before it starts or writes anything, naming what to change; the
        # first keeps its dev.json (a second one used to write over it, act on its pieces, then delete it).
        ports = ["--temporal-port", str(free_port()), "--ui-port", str(free_port()), "--sim-port", str(free_port()),
                 "--sim-tls-port", str(free_port()), "--metrics-port", "0"]
        beside = subprocess.run([REGATTA, "dev", "--demo", *ports, "--api-port", str(api_port)],
                                env={**env, "REGATTA_HOME": str(tmp_path / "beside")}, capture_output=True, text=True,
                                timeout=60)
        assert beside.returncode == 2 and f"{api_port} (--api-port)" in beside.stderr, beside.stdout + beside.stderr
        assert "Regatta dev is up" not in beside.stdout and not (tmp_path / "beside" / "dev.json").exists()
        same_home = subprocess.run([REGATTA, "dev", *ports, "--api-port", str(free_port())], env=env,
                                   capture_output=True, text=True, timeout=60)
        assert same_home.returncode == 2 and f"a dev stack already runs from {home}" in same_home.stderr, same_home.stderr
        assert json.loads(described.read_text()) == info and all(psutil.pid_exists(pid) for pid in pids)

        listed = subprocess.run([REGATTA, "clusters", "list", "--output", "json"],
                                env=joined, capture_output=True, text=True, timeout=60)
        clusters = {c["name"]: c for c in json.loads(listed.stdout)}
        assert len(clusters) >= 12 and clusters["eks-dev-apse2"]["health"] == "healthy"
        # the fleet of today: one cluster behind, a manifest still on an API its next minor removes
        ready = subprocess.run([REGATTA, "upgrade", "readiness", "--to", "1.32", "--selector", "cloud=onprem", "--output",
                                "json"], env=joined, capture_output=True, text=True, timeout=120)
        assert ready.returncode == 0, ready.stdout + ready.stderr
        [onprem] = json.loads(ready.stdout)
        assert onprem["cluster"] == "onprem-prod-fra" and onprem["ready"] is False
        assert "removed_api:flowcontrol.apiserver.k8s.io/v1beta3/FlowSchema" in [f["id"] for f in onprem["findings"]]

        upgrade = subprocess.run(
            [REGATTA, "upgrade", "start", "eks-dev-apse2", "--to", "1.35",
             "--ticket", "CHG-DEV", "--wait", "--poll-interval", "0.1"],
            env=joined, capture_output=True, text=True, timeout=180,
        )
        assert upgrade.returncode == 0, upgrade.stdout + upgrade.stderr

        report = http.get(f"{info['env']['REGATTA_SIM_URL']}/sim/report", params={"cluster": "eks-dev-apse2"}).json()
        assert report["clusters"]["eks-dev-apse2"]["control_plane_version"] == "1.35"
        assert report["pdb_violations"] == [] and report["double_drains"] == []

        # A change-ticket system's way in: a token, an upgrade over the API, the trail it left.
        made = subprocess.run([REGATTA, "token", "create", "--name", "servicenow",
                               "--role", "operator", "--env", "staging"], env=joined, capture_output=True, text=True,
                              timeout=60)
        assert made.returncode == 0 and made.stdout.startswith("rgt_"), made.stderr
        headers = {"Authorization": f"Bearer {made.stdout.strip()}"}
        api = f"http://127.0.0.1:{api_port}"
        started = http.post(f"{api}/v1/operations", headers=headers, timeout=30, json={
            "kind": "upgrade", "ticket": "CHG-API-1",
            "input": {"cluster": "eks-staging-use1", "target_version": "1.35", "poll_interval_seconds": 0.1}})
        assert started.status_code == 201, started.text
        deadline = time.monotonic() + 180
        while (found := http.get(f"{api}{started.json()['status_url']}", headers=headers, timeout=30).json())["status"] == "RUNNING":
            assert time.monotonic() < deadline, found
            time.sleep(0.5)
        assert found["status"] == "COMPLETED" and found["progress"]["phase"] == "succeeded"
        trail = subprocess.run([REGATTA, "audit", "list", "--cluster", "eks-staging-use1",
                                "--output", "json"], env=joined, capture_output=True, text=True, timeout=60)
        lines = json.loads(trail.stdout)
        assert {(r["requested_by"], r["ticket"]) for r in lines} == {("servicenow", "CHG-API-1")}
        assert ("api start", "started") in [(r["action"], r["outcome"]) for r in lines]

        # The README's promise: kill -9 the worker; regatta dev reports it and keeps the rest running,
        # and a worker started by hand beside them takes the work.
        os.kill(info["pieces"]["worker"]["pid"], signal.SIGKILL)
        deadline = time.monotonic() + 30
        while "exited" not in json.loads(described.read_text())["pieces"]["worker"]:
            assert time.monotonic() < deadline, "dev.json never marked the killed worker"
            time.sleep(0.2)
        assert dev.poll() is None, "regatta dev stopped with its worker"
        others = [info["pieces"][name]["pid"] for name in ("temporal", "simulator", "api")]
        assert all(psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE for pid in others)
        by_hand = subprocess.Popen([REGATTA, "worker", "--metrics-port", "0"], env=joined,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            carried = subprocess.run([REGATTA, "upgrade", "start", "eks-staging-euw1", "--to", "1.35", "--ticket", "CHG-DEV-2",
                                      "--wait", "--poll-interval", "0.1"], env=joined, capture_output=True, text=True,
                                     timeout=180)
            assert carried.returncode == 0, carried.stdout + carried.stderr
        finally:
            by_hand.terminate()
            by_hand.wait(timeout=30)

        dev.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        dev.send_signal(signal.SIGINT)  # an impatient second signal must not cut the shutdown short
        assert dev.wait(timeout=60) == 0
        deadline = time.monotonic() + 20
        while any(psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE for pid in pids):
            assert time.monotonic() < deadline, "a piece outlived regatta dev"
            time.sleep(0.2)
        assert not described.exists()
        said = dev.stdout.read()
        assert "worker (pid" in said and "exited with code -9" in said and "The other pieces keep running" in said
    finally:
        stop_dev(dev, described)


def test_a_dev_json_left_by_a_stack_that_crashed_refuses_nothing_and_a_live_one_refuses(tmp_path):
    """Its pids may belong to other processes since (a worker, a test): only a piece started before the file was
    written is the stack's. The port check runs after: a held port is named with its flag."""
    home = tmp_path / "home"
    home.mkdir()
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("REGATTA_")}, "REGATTA_HOME": str(home)}
    lookalike = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "regatta", "worker"])
    held = socket.socket()
    try:
        held.bind(("127.0.0.1", 0))
        held.listen()
        api_port = held.getsockname()[1]
        dev_json = home / "dev.json"
        dev_json.write_text(json.dumps({"pieces": {"worker": {"pid": lookalike.pid, "address": ""}}}))
        past = time.time() - 3600  # written an hour before that process started: a stale file
        os.utime(dev_json, (past, past))
        flags = ["--temporal-port", str(free_port()), "--ui-port", str(free_port()), "--sim-port", str(free_port()),
                 "--sim-tls-port", str(free_port()), "--metrics-port", "0", "--api-port", str(api_port)]
        stale = subprocess.run([REGATTA, "dev", *flags], env=env, capture_output=True, text=True, timeout=60)
        assert stale.returncode == 2 and f"{api_port} (--api-port)" in stale.stderr, stale.stderr
        assert "already runs" not in stale.stderr
        os.utime(dev_json, None)  # written now, after it started: that process is the stack's worker
        live = subprocess.run([REGATTA, "dev", *flags], env=env, capture_output=True, text=True, timeout=60)
        assert live.returncode == 2 and f"worker pid {lookalike.pid}" in live.stderr, live.stderr
        assert json.loads(dev_json.read_text())["pieces"]["worker"]["pid"] == lookalike.pid  # left as it was
    finally:
        held.close()
        lookalike.kill()
        lookalike.wait()
