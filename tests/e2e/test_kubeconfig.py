"""`regatta clusters kubeconfig` as an SRE uses it: a file only they can read, that the real kubectl
and the official client take to a simulated cluster's API server over HTTPS, trusting it through
the run's CA like a real cluster; and the refusals."""

from __future__ import annotations

import json
import os
import stat
import subprocess

import yaml
from kubernetes import client as k8s
from kubernetes import config as k8s_config

from tests.cli_runs import regatta
from tests.kubectl_runs import KUBECTL


async def test_a_simulated_clusters_kubeconfig_works_over_tls_with_kubectl_and_the_client(queue_settings, add_cluster,
                                                                                           simulator, tmp_path):
    name = add_cluster("kcfg", pools=1, nodes=2)
    path = tmp_path / "kubeconfig"
    made = await regatta(queue_settings, "clusters", "kubeconfig", name, "--output", str(path))
    assert made.returncode == 0, made.stderr
    assert stat.S_IMODE(path.stat().st_mode) == 0o600  # it holds a token
    config = yaml.safe_load(path.read_text())
    server = config["clusters"][0]["cluster"]["server"]
    assert server == f"{simulator.kube_url}/k8s/{name}" and server.startswith("https://")
    assert config["current-context"] == name and config["users"][0]["user"]["token"]

    version = subprocess.run([KUBECTL, "--kubeconfig", str(path), "get", "--raw", "/version"], capture_output=True,
                             text=True, timeout=60)
    assert version.returncode == 0, version.stderr
    assert json.loads(version.stdout)["major"] == "1"

    api = k8s.CoreV1Api(k8s_config.new_client_from_config(config_file=str(path)))
    nodes = api.list_node().items
    assert len(nodes) == 2 and all(n.metadata.name.startswith("pool0-") for n in nodes)

    printed = await regatta(queue_settings, "clusters", "kubeconfig", name)
    assert printed.returncode == 0 and yaml.safe_load(printed.stdout)["clusters"][0]["cluster"]["server"] == server


async def test_the_file_is_never_readable_by_others_and_a_symlink_is_replaced_not_followed(
        queue_settings, add_cluster, inventory, tmp_path):
    name = add_cluster("kcfgsafe", pools=1, nodes=1)
    wide = tmp_path / "wide"
    wide.write_text("old")
    wide.chmod(0o644)  # a file that is there, readable by everyone
    victim = tmp_path / "victim"
    victim.write_text("someone else's file\n")
    link = tmp_path / "link"
    link.symlink_to(victim)
    for path in (wide, link):
        made = await regatta(queue_settings, "clusters", "kubeconfig", name, "--output", str(path))
        assert made.returncode == 0, made.stderr
        assert not path.is_symlink() and stat.S_IMODE(path.stat().st_mode) == 0o600
        assert yaml.safe_load(path.read_text())["current-context"] == name
    assert victim.read_text() == "someone else's file\n"  # the link's target untouched
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    handed = [r for r in inventory.audit(cluster=name) if r.operation == "kubeconfig"]
    assert [r.outcome for r in handed] == ["handed_out", "handed_out"] and str(link) in handed[1].detail


async def test_without_the_ca_kubectl_refuses_the_simulated_api_server(queue_settings, add_cluster, tmp_path):
    name = add_cluster("kcfgca", pools=1, nodes=1)
    path = tmp_path / "kubeconfig"
    assert (await regatta(queue_settings, "clusters", "kubeconfig", name, "--output", str(path))).returncode == 0
    config = yaml.safe_load(path.read_text())
    del config["clusters"][0]["cluster"]["certificate-authority-data"]
    path.write_text(yaml.safe_dump(config))
    refused = subprocess.run([KUBECTL, "--kubeconfig", str(path), "get", "--raw", "/version"], capture_output=True,
                             text=True, timeout=60, env={**os.environ, "SSL_CERT_FILE": "/nonexistent"})
    assert refused.returncode != 0 and "certificate" in refused.stderr


async def test_an_unknown_cluster_is_refused_and_nothing_is_written(queue_settings, tmp_path):
    path = tmp_path / "kubeconfig"
    unknown = await regatta(queue_settings, "clusters", "kubeconfig", "no-such-cluster", "--output", str(path))
    assert unknown.returncode == 2 and "not in the inventory" in unknown.stderr and not path.exists()
