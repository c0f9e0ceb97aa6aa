"""`regatta access …` and kubectl run synchronously as a person runs them, and a grant read from `access list`."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from tests.kubectl_runs import KUBECTL
from tests.warm_cli import WARM


def regatta(settings, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return WARM.run_now(list(args), {**os.environ, **settings.as_env(), "COLUMNS": "250"}, timeout=timeout)


def kubectl(config: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([KUBECTL, "--kubeconfig", str(config), *args], capture_output=True, text=True, timeout=60,
                          env={"HOME": str(config.parent), "PATH": "/usr/bin:/bin"})


def grant_id_of(output: str) -> str:
    return next(word for line in output.splitlines() for word in line.split() if word.startswith("access-")).rstrip(":")


def grants(settings, grant_id: str) -> dict:
    listed = regatta(settings, "access", "list", "--output", "json")
    assert listed.returncode == 0, listed.stderr
    return next(g for g in json.loads(listed.stdout) if g["grant_id"] == grant_id)
