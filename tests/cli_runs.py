"""`regatta` run as an operator runs it, in a child process, and an operation's status polled until it gets somewhere
and then printed by the CLI once: what the CLI's tests share."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess

from tests.conftest import REGATTA
from tests.warm_cli import WARM


async def regatta(settings, *args: str, env: dict | None = None, cold: bool = False) -> subprocess.CompletedProcess:
    """Run `regatta ARGS` in a process of its own without blocking the worker on this loop: forked from a process that
    has imported the command line already (tests/warm_cli.py), or with `cold` started from nothing, as a terminal
    starts it."""
    environment = {**os.environ, **settings.as_env(), "COLUMNS": "200", **(env or {})}
    if not cold:
        return await WARM.run(list(args), environment, timeout=120)
    process = await asyncio.create_subprocess_exec(
        REGATTA, *args, env=environment,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=120)
    return subprocess.CompletedProcess(args, process.returncode, out.decode(), err.decode())


async def status_until(settings, operation_id: str, check, *, timeout: float = 60) -> dict:
    """Poll where an operation stands in this process (the same status `op status --output json`
    prints, read by the same function), then ask the CLI once and return what it printed. A CLI
    start per poll cost the suite most of a core."""
    from regatta.temporal.operations import status

    deadline = asyncio.get_running_loop().time() + timeout
    while not check(await status(settings, operation_id)):
        assert asyncio.get_running_loop().time() < deadline, f"{operation_id} never got there"
        await asyncio.sleep(0.1)
    shown = await regatta(settings, "op", "status", operation_id, "--output", "json")
    assert shown.returncode == 0, shown.stderr
    return json.loads(shown.stdout)
