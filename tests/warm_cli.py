"""`regatta` started warm: one process per test process imports the whole command line once, then forks a child for
each command a test runs. The child is a process of its own, as an operator's would be: its environment, working
directory, argument vector and standard streams are the command's; it runs the console entry point (`regatta.cli.main`),
which exits with the promised code. What it saves is the second a cold start spends importing (Python, pydantic,
SQLAlchemy, the Temporal SDK and Regatta's own modules), paid per command a third of the suite's CPU before.

What differs from a cold start is only what a module computes from the environment when it is imported: the CLI's two
rich consoles read COLUMNS then, so the child builds them again in its own environment. A shell (the tour's) runs it
through a stand-in `regatta` on its PATH (`stand_in_directory()`), which hands the server its argv, environment,
working directory and its own three standard streams over a Unix socket and exits with the command's code. `regatta
dev`, piped lists and kubectl's credential plugin are still started cold.

Run as a script it is the server: a JSON request per line on stdin ({"id", "args", "env", "cwd", "stdout", "stderr"},
the last two files the child writes; or {"kill": id}, a command its test gave up on), a JSON line on stdout when a
child starts ({"id", "pid"}) and when it ends ({"id", "rc"}); and on its socket, a stand-in's request with its three
file descriptors, answered with the exit code (four bytes). It leaves when its stdin closes (the test process
ended), killing what still runs; a child dies with it in any case (PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import ctypes
import itertools
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from concurrent.futures import Future
from pathlib import Path


def _serve(socket_path: str) -> None:
    from regatta.cli import build_app

    build_app()  # every command's module, imported once here rather than in each child
    import regatta.api.client  # what commands import when they run: the API client, Temporal's
    import regatta.temporal.operations  # noqa: F401

    listening = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listening.bind(socket_path)
    listening.listen(64)
    children: dict[int, str] = {}  # pid → the request's id (from stdin)
    callers: dict[int, socket.socket] = {}  # pid → the stand-in's connection that waits for its exit code
    waiting = b""
    try:
        while True:
            readable, _, _ = select.select([0, listening], [], [], 0.01 if children or callers else None)
            if listening in readable:
                connection, _ = listening.accept()
                message, fds, _, _ = socket.recv_fds(connection, 1 << 16, 3)
                while chunk := connection.recv(1 << 16):  # the rest of a long request, up to the stand-in's half-close
                    message += chunk
                pid = os.fork()
                if pid == 0:
                    listening.close()
                    connection.close()
                    _child(json.loads(message), streams=fds)
                for fd in fds:
                    os.close(fd)
                callers[pid] = connection
            if 0 in readable:
                chunk = os.read(0, 1 << 16)
                if not chunk:
                    return  # the test process has gone: so do its commands (below)
                waiting += chunk
                while b"\n" in waiting:
                    line, waiting = waiting.split(b"\n", 1)
                    request = json.loads(line)
                    if "kill" in request:  # a command its test gave up on: killed here, where its pid is still ours
                        for pid, key in children.items():
                            if key == request["kill"]:
                                os.kill(pid, signal.SIGKILL)
                        continue
                    pid = os.fork()
                    if pid == 0:
                        listening.close()
                        _child(request)
                    children[pid] = request["id"]
                    os.write(1, (json.dumps({"id": request["id"], "pid": pid}) + "\n").encode())
            while children or callers:
                pid, status = os.waitpid(-1, os.WNOHANG)
                if pid == 0:
                    break
                code = os.waitstatus_to_exitcode(status)
                if pid in callers:
                    connection = callers.pop(pid)
                    with contextlib.suppress(OSError):  # a stand-in killed meanwhile hears nothing
                        connection.sendall(code.to_bytes(4, "big", signed=True))
                    connection.close()
                else:
                    os.write(1, (json.dumps({"id": children.pop(pid), "rc": code}) + "\n").encode())
    finally:
        for pid in [*children, *callers]:
            os.kill(pid, signal.SIGKILL)
        for pid in [*children, *callers]:
            os.waitpid(pid, 0)
        listening.close()
        with contextlib.suppress(OSError):
            os.unlink(socket_path)


def _child(request: dict, *, streams: list[int] | None = None) -> None:
    """In the child: become the command's process, then run the entry point, which exits with the command's code.
    Its standard streams are the stand-in's own (`streams`: stdin, stdout, stderr), or /dev/null and the request's two
    files. What it raises besides is printed as a cold start prints it, exit code 1. It dies with the server."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG: not outliving the server
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        if streams is not None:
            for fd, given in enumerate(streams):
                os.dup2(given, fd)
                os.close(given)
        else:
            null = os.open(os.devnull, os.O_RDONLY)
            os.dup2(null, 0)
            os.close(null)
            for fd, path in ((1, request["stdout"]), (2, request["stderr"])):
                target = os.open(path, os.O_WRONLY | os.O_TRUNC)
                os.dup2(target, fd)
                os.close(target)
        from regatta.cli import main, render

        render.console.__init__()  # type: ignore[misc]  # built at import, from the server's COLUMNS: the command's own
        render.errors.__init__(stderr=True)  # type: ignore[misc]
        sys.argv = ["regatta", *request["args"]]
        main()
    except BaseException:  # noqa: BLE001 - anything main() did not turn into an exit code: shown, then exit 1
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(1)


# `regatta` for a shell (the tour's): a stand-in that hands its argv, environment, working directory and its own three
# standard streams to the server's socket, which forks the command onto them, and exits with the command's code.
# `python -S`: no site packages, only what it needs (a few milliseconds).
STAND_IN = """import json, os, socket, sys
connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
connection.connect({socket_path!r})
request = json.dumps({{"args": sys.argv[1:], "env": dict(os.environ), "cwd": os.getcwd()}}).encode()
socket.send_fds(connection, [request], [0, 1, 2])
connection.shutdown(socket.SHUT_WR)
code = b""
while len(code) < 4:
    got = connection.recv(4 - len(code))
    if not got:
        sys.exit("the warm regatta server ended before the command did")
    code += got
sys.exit(int.from_bytes(code, "big", signed=True) % 256)
"""


class _Server:
    """One server process and what it has not answered yet."""

    def __init__(self) -> None:
        root = Path(__file__).resolve().parent.parent
        self.home = tempfile.mkdtemp(prefix="regatta-warm-")
        self.socket_path = f"{self.home}/socket"
        self.process = subprocess.Popen([sys.executable, __file__, self.socket_path], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, cwd=root, env={**os.environ, "PYTHONPATH": str(root)})
        self.stand_in = Path(self.home, "bin", "regatta")
        self.stand_in.parent.mkdir()
        self.stand_in.write_text(f"#!{sys.executable} -S\n" + STAND_IN.format(socket_path=self.socket_path))
        self.stand_in.chmod(0o755)
        self.started: dict[str, Future[int]] = {}
        self.ended: dict[str, Future[int]] = {}
        atexit.register(self._end)

    def _end(self) -> None:
        self.process.kill()
        shutil.rmtree(self.home, ignore_errors=True)


class WarmCli:
    """The test process's end: starts the server on first use, hands it command lines, answers with what each printed."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ids = itertools.count()
        self._server: _Server | None = None

    def _read(self, server: _Server) -> None:
        assert server.process.stdout is not None
        for line in server.process.stdout:
            said = json.loads(line)
            with self._lock:
                pending = server.started.pop(said["id"], None) if "pid" in said else server.ended.pop(said["id"], None)
            if pending is not None and not pending.done():  # one its caller gave up on is done (cancelled) already
                pending.set_result(said.get("pid", said.get("rc")))
        with self._lock:  # the server died: whatever it had not answered never will be
            for pending in [*server.started.values(), *server.ended.values()]:
                if not pending.done():
                    pending.set_exception(RuntimeError("the warm regatta server ended"))
            server.started.clear()
            server.ended.clear()

    def _send(self, server: _Server, request: dict) -> None:
        assert server.process.stdin is not None
        server.process.stdin.write((json.dumps(request) + "\n").encode())
        server.process.stdin.flush()

    def _submit(self, args: list[str], env: dict[str, str], scratch: str) -> tuple[str, Future[int], Future[int]]:
        key = str(next(self._ids))
        started, ended = Future[int](), Future[int]()
        with self._lock:
            server = self._started_server()
            server.started[key], server.ended[key] = started, ended
            self._send(server, {"id": key, "args": args, "env": env, "cwd": os.getcwd(),
                                      "stdout": f"{scratch}/stdout", "stderr": f"{scratch}/stderr"})
        return key, started, ended

    def stand_in_directory(self) -> str:
        """A directory holding `regatta` for a shell's PATH: each command it runs is forked from this server, on the
        shell's own streams, once the server is listening."""
        with self._lock:
            server = self._started_server()
        for _ in range(600):
            if os.path.exists(server.socket_path):
                return str(server.stand_in.parent)
            assert server.process.poll() is None, "the warm regatta server ended before it listened"
            time.sleep(0.05)
        raise AssertionError("the warm regatta server never listened")

    def _started_server(self) -> _Server:
        if self._server is None or self._server.process.poll() is not None:
            self._server = _Server()
            threading.Thread(target=self._read, args=(self._server,), daemon=True).start()
        return self._server

    def _give_up(self, key: str) -> None:
        """Kill a command its caller stopped waiting for (a timeout, a cancelled test)."""
        with self._lock:
            if self._server is not None and self._server.process.poll() is None:
                self._send(self._server, {"kill": key})

    @staticmethod
    def _printed(args: list[str], code: int, scratch: str) -> subprocess.CompletedProcess:
        return subprocess.CompletedProcess(["regatta", *args], code,
                                           Path(scratch, "stdout").read_text(encoding="utf-8", errors="replace"),
                                           Path(scratch, "stderr").read_text(encoding="utf-8", errors="replace"))

    async def run(self, args: list[str], env: dict[str, str], *, timeout: float) -> subprocess.CompletedProcess:
        """`regatta ARGS` in the environment `env`, awaited without blocking the loop; killed after `timeout`."""
        with _scratch() as scratch:
            key, started, ended = self._submit(args, env, scratch)
            try:
                await asyncio.wait_for(asyncio.wrap_future(started), timeout=30)
                code = await asyncio.wait_for(asyncio.wrap_future(ended), timeout=timeout)
            except BaseException:
                self._give_up(key)
                raise
            return self._printed(args, code, scratch)

    def run_now(self, args: list[str], env: dict[str, str], *, timeout: float) -> subprocess.CompletedProcess:
        """The same for a test that is not a coroutine: this thread waits."""
        with _scratch() as scratch:
            key, started, ended = self._submit(args, env, scratch)
            try:
                started.result(timeout=30)
                code = ended.result(timeout=timeout)
            except BaseException:
                self._give_up(key)
                raise
            return self._printed(args, code, scratch)


@contextlib.contextmanager
def _scratch():
    """A directory for one command's two streams (created empty: the child opens them to write)."""
    with tempfile.TemporaryDirectory(prefix="regatta-cli-") as scratch:
        Path(scratch, "stdout").touch()
        Path(scratch, "stderr").touch()
        yield scratch


WARM = WarmCli()

if __name__ == "__main__":
    _serve(sys.argv[1])
