"""`regatta dev` started as a newcomer starts it, on free ports, and stopped as Ctrl-C stops it: the dev stack the
demo, tour and persistence tests share."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time

import psutil

from tests.conftest import REGATTA


def stop_dev(dev: subprocess.Popen, described) -> None:
    """However the test ended, nothing it started outlives it: `regatta dev` stops its pieces on
    SIGTERM; pieces of a dev that could not (each runs in a session of its own) are killed by pid."""
    pieces = []
    try:
        pieces = [piece["pid"] for piece in json.loads(described.read_text())["pieces"].values()]
    except (OSError, ValueError, KeyError):
        pass  # none written, half written or gone: the stack is still stopped by its own process below
    if dev.poll() is None:
        dev.terminate()
        try:
            dev.wait(timeout=30)
        except subprocess.TimeoutExpired:
            dev.kill()
    for pid in pieces:
        try:
            piece = psutil.Process(pid)
            if any("regatta" in part or "temporal" in part for part in piece.cmdline()):
                piece.kill()
        except psutil.Error:
            pass  # gone already


def start_dev(home, *flags: str, metrics_port: int = 0, api_port: int | None = None):
    """`regatta dev` on free ports with `flags`, once it has written dev.json: (process, dev.json's
    path, what it says, the environment a CLI call joins it with). A port chosen free can be taken by
    another test process before a piece binds it (the test processes run side by side): then the pieces
    are started again on other ports, up to twice."""
    for attempt in range(3):
        try:
            return _start_dev(home, *flags, metrics_port=metrics_port, api_port=api_port)
        except PortTaken:
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


class PortTaken(AssertionError):
    pass


def _start_dev(home, *flags: str, metrics_port: int = 0, api_port: int | None = None):
    env = {k: v for k, v in os.environ.items() if not k.startswith("REGATTA_")}
    env["REGATTA_HOME"] = str(home)
    dev = subprocess.Popen(
        [REGATTA, "dev", *flags, "--temporal-port", str(free_port()), "--ui-port", str(free_port()), "--sim-port",
         str(free_port()), "--sim-tls-port", str(free_port()), "--metrics-port", str(metrics_port),
         "--api-port", str(api_port or free_port())],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    described = home / "dev.json"
    deadline = time.monotonic() + 120
    while not described.exists():
        if dev.poll() is not None or time.monotonic() > deadline:
            stop_dev(dev, described)
            said = dev.stdout.read() if dev.stdout else ""
            flat = " ".join(said.split())  # the console wraps long lines
            if "before listening" in flat or "already in use" in flat:
                raise PortTaken(said)
            raise AssertionError(f"regatta dev never wrote dev.json:\n{said}")
        time.sleep(0.2)
    return dev, described, json.loads(described.read_text()), env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
