"""Workflow code runs outside the SDK's sandbox (workers/main.py); what the sandbox refused at run
time, ruff refuses in workflows/ and regatta/rules/ before it lands (their ruff.toml). These plant
each kind of non-deterministic call in a file of those directories (given to ruff on stdin, so
nothing is written into the tree) and expect ruff to name it; and plant the same call outside
them, where activities may make it, and expect nothing."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RUFF = shutil.which("ruff", path=str(Path(sys.executable).parent)) or "ruff"

PLANTED = {
    "the wall clock": "from datetime import datetime\n\n\ndef step():\n    return datetime.now()\n",
    "a date today": "import datetime\n\n\ndef step():\n    return datetime.date.today()\n",
    "the epoch time": "import time\n\n\ndef step():\n    return time.time()\n",
    "a blocking sleep": "from time import sleep\n\n\ndef step():\n    sleep(1)\n",
    "an unseeded draw": "import random\n\n\ndef step():\n    return random.random()\n",
    "a fresh uuid": "import uuid\n\n\ndef step():\n    return uuid.uuid4()\n",
    "the environment": "import os\n\n\ndef step():\n    return os.environ.get('X')\n",
    "a thread": "import threading\n\n\ndef step():\n    return threading.Lock()\n",
}


def ruff_on(source: str, as_path: str) -> subprocess.CompletedProcess:
    return subprocess.run([RUFF, "check", "--no-cache", "--stdin-filename", as_path, "-"], input=source, text=True,
                          capture_output=True, cwd=ROOT, timeout=60)


@pytest.mark.parametrize("directory", ["workflows", "regatta/rules"])
@pytest.mark.parametrize("kind", sorted(PLANTED))
def test_a_non_deterministic_call_in_workflow_code_is_refused(directory, kind):
    checked = ruff_on(PLANTED[kind], f"{directory}/planted.py")
    assert checked.returncode == 1, checked.stdout + checked.stderr
    assert "TID251" in checked.stdout and "is banned" in checked.stdout


@pytest.mark.parametrize("kind", sorted(PLANTED))
def test_the_same_call_in_an_activity_is_allowed(kind):
    checked = ruff_on(PLANTED[kind], "activities/planted.py")
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_a_patch_asked_around_the_one_marker_is_refused():
    source = "from temporalio import workflow\n\n\ndef step():\n    return workflow.patched('x')\n"
    checked = ruff_on(source, "workflows/planted.py")
    assert checked.returncode == 1 and "workflows.pieces.patches.patched" in checked.stdout, checked.stdout


def test_what_workflows_do_use_is_allowed():
    source = ("from temporalio import workflow\n\n\nasync def step():\n"
              "    return workflow.now(), workflow.random().random(), workflow.uuid4()\n")
    checked = ruff_on(source, "workflows/planted.py")
    assert checked.returncode == 0, checked.stdout + checked.stderr
