"""`regatta` started warm: one process per test process imports the whole command line once, then forks a child for
each command a test runs. The child is a process of its own, as an operator's would be: its environment, working
directory, argument vector and standard streams are the command's; it runs the console entry point (`regatta.cli.main`),
which exits with the promised code. What it saves is the second a cold start spends importing (Python, pydantic,
SQLAlchemy, the Temporal SDK and Regatta's own modules), paid per command a third of the suite's CPU before.

What differs from a cold start is only what a module computes from the environment when it is imported: the CLI's two
rich consoles read COLUMNS then, so the child builds them again in its own environment. Tests of what a user types at
a terminal (the tour, `regatta dev`, piped output) still start `regatta` cold.

Run as a script it is the server: a JSON request per line on stdin ({"id", "args", "env", "cwd", "stdout", "stderr"},
the last two files the child writes), a JSON line on stdout when a child starts ({"id", "pid"}) and when it ends
({"id", "rc"}). It leaves when its stdin closes (the test process ended).
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import itertools
import json
import os
import select
import subprocess
import sys
import tempfile
import threading
from concurrent.futures import Future
from pathlib import Path


def _serve() -> None:
    from regatta.cli import build_app

    build_app()  # every command's module, imported once here rather than in each child
    import regatta.api.client  # what commands import when they run: the API client, Temporal's
    import regatta.temporal.operations  # noqa: F401

    children: dict[int, str] = {}
    waiting = b""
    while True:
        readable, _, _ = select.select([0], [], [], 0.01 if children else None)
        if readable:
            chunk = os.read(0, 1 << 16)
            if not chunk:
                return
            waiting += chunk
            while b"\n" in waiting:
                line, waiting = waiting.split(b"\n", 1)
                request = json.loads(line)
                pid = os.fork()
                if pid == 0:
                    try:
                        _run(request)
                    finally:
                        os._exit(70)  # the entry point exits itself: reaching here means it could not start
                children[pid] = request["id"]
                os.write(1, (json.dumps({"id": request["id"], "pid": pid}) + "\n").encode())
        while children:
            pid, status = os.waitpid(-1, os.WNOHANG)
            if pid == 0:
                break
            os.write(1, (json.dumps({"id": children.pop(pid), "rc": os.waitstatus_to_exitcode(status)}) + "\n").encode())


def _run(request: dict) -> None:
    """In the child: become the command's process, then run the entry point (which never returns)."""
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    for fd, path in ((1, request["stdout"]), (2, request["stderr"])):
        target = os.open(path, os.O_WRONLY | os.O_TRUNC)
        os.dup2(target, fd)
        os.close(target)
    from regatta.cli import main, render

    render.console.__init__()  # type: ignore[misc]  # built at import, from the server's COLUMNS: the command's own
    render.errors.__init__(stderr=True)  # type: ignore[misc]
    sys.argv = ["regatta", *request["args"]]
    main()


class WarmCli:
    """The test process's end: starts the server on first use, hands it command lines, answers with what each printed."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ids = itertools.count()
        self._started: dict[str, Future[int]] = {}
        self._ended: dict[str, Future[int]] = {}
        self._server: subprocess.Popen[bytes] | None = None

    def _ensure(self) -> subprocess.Popen[bytes]:
        if self._server is None or self._server.poll() is not None:
            root = Path(__file__).resolve().parent.parent
            self._server = subprocess.Popen([sys.executable, __file__], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                            cwd=root, env={**os.environ, "PYTHONPATH": str(root)})
            threading.Thread(target=self._read, args=(self._server,), daemon=True).start()
            atexit.register(self._server.kill)
        return self._server

    def _read(self, server: subprocess.Popen[bytes]) -> None:
        assert server.stdout is not None
        for line in server.stdout:
            said = json.loads(line)
            with self._lock:
                pending = self._started.pop(said["id"]) if "pid" in said else self._ended.pop(said["id"])
            pending.set_result(said.get("pid", said.get("rc")))
        with self._lock:  # the server died: whatever it had not answered never will be
            for pending in [*self._started.values(), *self._ended.values()]:
                pending.set_exception(RuntimeError("the warm regatta server ended"))
            self._started.clear()
            self._ended.clear()

    def _submit(self, args: list[str], env: dict[str, str], scratch: str) -> tuple[Future[int], Future[int]]:
        key = str(next(self._ids))
        started, ended = Future[int](), Future[int]()
        with self._lock:
            server = self._ensure()
            self._started[key], self._ended[key] = started, ended
            assert server.stdin is not None
            server.stdin.write((json.dumps({"id": key, "args": args, "env": env, "cwd": os.getcwd(),
                                            "stdout": f"{scratch}/stdout", "stderr": f"{scratch}/stderr"}) + "\n").encode())
            server.stdin.flush()
        return started, ended

    @staticmethod
    def _printed(args: list[str], code: int, scratch: str) -> subprocess.CompletedProcess:
        return subprocess.CompletedProcess(["regatta", *args], code, Path(scratch, "stdout").read_text(),
                                           Path(scratch, "stderr").read_text())

    async def run(self, args: list[str], env: dict[str, str], *, timeout: float) -> subprocess.CompletedProcess:
        """`regatta ARGS` in the environment `env`, awaited without blocking the loop; killed after `timeout`."""
        with _scratch() as scratch:
            started, ended = self._submit(args, env, scratch)
            pid = await asyncio.wrap_future(started)
            try:
                code = await asyncio.wait_for(asyncio.wrap_future(ended), timeout=timeout)
            except TimeoutError:
                os.kill(pid, 9)
                raise
            return self._printed(args, code, scratch)

    def run_now(self, args: list[str], env: dict[str, str], *, timeout: float) -> subprocess.CompletedProcess:
        """The same for a test that is not a coroutine: this thread waits."""
        with _scratch() as scratch:
            started, ended = self._submit(args, env, scratch)
            pid = started.result(timeout=30)
            try:
                code = ended.result(timeout=timeout)
            except TimeoutError:
                os.kill(pid, 9)
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
    _serve()
