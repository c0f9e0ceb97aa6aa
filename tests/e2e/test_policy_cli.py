"""`regatta policy` as an operator drives it, against the dev server, the simulator and the worker:
a bundle from a directory and from a git repository at a ref (real git), preview changing
nothing, --plan-only naming every cluster in or out, rollout --wait, status by bundle and by
cluster, rollback to the previous revision, and line-numbered refusals with exit code 2."""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path

import httpx
import yaml

from tests.cli_runs import regatta, status_until
from tests.shared_http import http


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
                          capture_output=True, text=True, check=True)
    return done.stdout.strip()


def write_manifests(directory: Path, level: str) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "limits.yaml").write_text(yaml.safe_dump_all([
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "limits", "namespace": "kube-system"},
         "data": {"level": level, "cluster": "{{ cluster.name }}"}},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "owner", "namespace": "kube-system"},
         "data": {"team": "{{ cluster.labels.team }}"}},
    ]))


def live(simulator, cluster: str, name: str) -> httpx.Response:
    return http.get(f"{simulator.url}/k8s/{cluster}/api/v1/namespaces/kube-system/configmaps/{name}", timeout=10,
                     headers={"Authorization": f"Bearer {simulator.world.api_token}"})


async def test_a_bundle_from_a_directory_previewed_rolled_out_reported_and_rolled_back(
        queue_settings, add_cluster, simulator, worker, tmp_path):
    tag = uuid.uuid4().hex[:6]
    clusters = [add_cluster("clipol", env="staging", labels={"pol": tag}) for _ in range(2)]
    other = add_cluster("clinopol", env="staging")
    write_manifests(tmp_path / "manifests", "low")
    bundle_file = tmp_path / "bundle.yaml"
    name = f"limits-{tag}"
    bundle_file.write_text(yaml.safe_dump({
        "name": name, "source": {"directory": "manifests"}, "targets": {"selector": {"labels": {"pol": tag}}},
        "stages": [{"name": "canary", "pick": {"count": 1}}, {"name": "rest", "concurrency": 2}],
        "timeout_seconds": 20, "poll_interval_seconds": 0.05}))

    preview = await regatta(queue_settings, "policy", "preview", "--file", str(bundle_file), "--cluster", clusters[0])
    assert preview.returncode == 0, preview.stderr
    assert "create  ConfigMap kube-system/limits" in preview.stdout and clusters[0] in preview.stdout
    assert live(simulator, clusters[0], "limits").status_code == 404  # a preview changes nothing

    table = await regatta(queue_settings, "policy", "rollout", "--file", str(bundle_file), "--plan-only")
    assert table.returncode == 0 and "canary" in table.stdout and clusters[0] in table.stdout, table.stderr
    plan = await regatta(queue_settings, "policy", "rollout", "--file", str(bundle_file), "--plan-only", "--output", "json")
    decisions = {d["cluster"]: d for d in json.loads(plan.stdout)["decisions"]}
    assert {n for n, d in decisions.items() if d["included"]} == set(clusters)
    assert decisions[other]["because"] == f"the targets need label pol={tag} (it has no pol label)"

    run = await regatta(queue_settings, "policy", "rollout", "--file", str(bundle_file), "--wait", "--ticket", "CHG-P1")
    assert run.returncode == 0, run.stdout + run.stderr
    assert f"started policy-{name}" in run.stdout
    for cluster in clusters:
        assert live(simulator, cluster, "limits").json()["data"] == {"level": "low", "cluster": cluster}
    low = live(simulator, clusters[0], "limits").json()["metadata"]["annotations"]["regatta.dev/bundle-revision"]

    write_manifests(tmp_path / "manifests", "high")
    preview = await regatta(queue_settings, "policy", "preview", "--file", str(bundle_file), "--output", "json")
    answers = {a["cluster"]: a for a in json.loads(preview.stdout) if a["included"]}
    change = next(c for c in answers[clusters[0]]["changes"] if c["key"]["name"] == "limits")
    assert change["action"] == "would_configure"
    assert {f["path"]: (f["before"], f["after"]) for f in change["fields"]} == {
        "/data/level": ("low", "high"), "/metadata/annotations/regatta.dev~1bundle-revision": (low, answers[clusters[0]]["revision"])}
    run = await regatta(queue_settings, "policy", "rollout", "--file", str(bundle_file), "--wait")
    assert run.returncode == 0, run.stdout + run.stderr
    assert live(simulator, clusters[1], "limits").json()["data"]["level"] == "high"

    status = await regatta(queue_settings, "policy", "status", "--bundle", name, "--output", "json")
    records = json.loads(status.stdout)
    assert {(r["cluster"], r["state"]) for r in records} == {(c, "compliant") for c in clusters}
    high = records[0]["revision"]
    by_cluster = await regatta(queue_settings, "policy", "status", "--cluster", clusters[0])
    assert by_cluster.returncode == 0 and name in by_cluster.stdout and "compliant" in by_cluster.stdout

    back = await regatta(queue_settings, "policy", "rollback", name, "--wait")
    assert back.returncode == 0, back.stdout + back.stderr
    assert f"rollback of bundle {name} from {high}" in back.stdout
    assert live(simulator, clusters[1], "limits").json()["data"]["level"] == "low"
    history = await regatta(queue_settings, "policy", "history", clusters[1], name, "--output", "json")
    assert [r["revision"] for r in json.loads(history.stdout)][-1] != high

    nothing = await regatta(queue_settings, "policy", "rollback", f"never-{tag}")
    assert nothing.returncode == 2 and "nothing to roll back" in nothing.stderr
    misspelt = await regatta(queue_settings, "policy", "rollback", name[:-1])  # its last character lost
    said = " ".join(misspelt.stderr.split())
    assert misspelt.returncode == 2 and f"did you mean {name}" in said, said


async def test_a_bundle_from_git_at_a_ref_records_its_commit(queue_settings, add_cluster, simulator, worker, tmp_path):
    tag = uuid.uuid4().hex[:6]
    [cluster] = [add_cluster("gitpol", env="staging", labels={"pol": tag})]
    repo = tmp_path / "policies"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    write_manifests(repo / "base", "v1")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "v1")
    git(repo, "tag", "release-1")
    write_manifests(repo / "base", "v2")
    git(repo, "commit", "-q", "-am", "v2")
    bundle_file = tmp_path / "bundle.yaml"
    bundle_file.write_text(yaml.safe_dump({
        "name": f"git-{tag}", "source": {"git": {"url": str(repo), "ref": "release-1", "path": "base"}},
        "targets": {"selector": {"labels": {"pol": tag}}}, "stages": [{"name": "all"}], "timeout_seconds": 20}))
    run = await regatta(queue_settings, "policy", "rollout", "--file", str(bundle_file), "--wait")
    assert run.returncode == 0, run.stdout + run.stderr
    assert live(simulator, cluster, "limits").json()["data"]["level"] == "v1"  # the tag, not the branch's head

    bundle_file.write_text(bundle_file.read_text().replace("release-1", "no-such-ref"))
    missing = await regatta(queue_settings, "policy", "rollout", "--file", str(bundle_file))
    assert missing.returncode == 2 and "has no branch, tag or commit 'no-such-ref'" in missing.stderr


async def test_bad_bundle_files_are_refused_with_the_line_to_fix(queue_settings, tmp_path):
    bundle_file = tmp_path / "bundle.yaml"
    bundle_file.write_text("name: Bad_Name\nmanifests: []\nstages:\n  - name: a\n    concurrency: 0\n")
    bad = await regatta(queue_settings, "policy", "rollout", "--file", str(bundle_file))
    assert bad.returncode == 2
    assert f"{bundle_file}:1: name:" in bad.stderr and f"{bundle_file}:5: stages.0.concurrency" in bad.stderr

    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "a.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n---\n"
                                           "kind: ConfigMap\nmetadata: {name: y}\n")
    bundle_file.write_text("name: ok\nsource: {directory: m}\n")
    bad = await regatta(queue_settings, "policy", "preview", "--file", str(bundle_file))
    assert bad.returncode == 2 and "m/a.yaml:5: manifests[1]: apiVersion is required" in bad.stderr
    assert "Traceback" not in bad.stderr


async def test_a_stage_approved_and_a_cluster_skipped_from_the_cli(queue_settings, add_cluster, worker, tmp_path, simulator):

    tag = uuid.uuid4().hex[:6]
    canary = add_cluster("opcan", env="canary", labels={"pol": tag})
    prod = [add_cluster("opprod", env="prod", labels={"pol": tag}) for _ in range(2)]
    name = f"steer-{tag}"
    bundle_file = tmp_path / "bundle.yaml"
    bundle_file.write_text(yaml.safe_dump({
        "name": name, "targets": {"selector": {"labels": {"pol": tag}}}, "timeout_seconds": 20,
        "manifests": [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "limits", "namespace": "kube-system"},
                       "data": {"level": "low"}}],
        "stages": [{"name": "canary", "selector": {"environment": "canary"}},
                   {"name": "prod", "selector": {"environment": "prod"}, "approval_required": True}]}))
    started = await regatta(queue_settings, "policy", "rollout", "--file", str(bundle_file), "--requested-by", "sre-alice")
    assert started.returncode == 0, started.stderr
    operation = f"policy-{name}"
    described = await status_until(queue_settings, operation, lambda d: d["progress"]["phase"] == "awaiting_approval")
    assert described["progress"]["stage"] == "prod"
    table = await regatta(queue_settings, "op", "status", operation)
    assert table.returncode == 0 and "awaiting_approval" in table.stdout and "APPLIED" in table.stdout, table.stderr
    wrong = await regatta(queue_settings, "op", "approve", operation, "--stage", "canary", "--approver", "sre-bob")
    assert wrong.returncode == 2 and "stage prod is the one waiting" in wrong.stderr
    own = await regatta(queue_settings, "op", "approve", operation, "--approver", "sre-alice")
    assert own.returncode == 2 and "cannot approve it" in own.stderr
    skipped = await regatta(queue_settings, "op", "skip", operation, prod[1], "--reason", "being rebuilt")
    assert skipped.returncode == 0, skipped.stderr
    approved = await regatta(queue_settings, "op", "approve", operation, "--stage", "prod", "--approver", "sre-bob")
    assert approved.returncode == 0, approved.stderr
    described = await status_until(queue_settings, operation, lambda d: d["status"] != "RUNNING")
    assert described["progress"]["phase"] == "succeeded", described
    assert live(simulator, canary, "limits").status_code == 200 and live(simulator, prod[0], "limits").status_code == 200
    assert live(simulator, prod[1], "limits").status_code == 404


async def test_a_rollback_halted_by_a_hand_edited_field_is_a_failure_in_every_answer(
        queue_settings, add_cluster, simulator, worker, tmp_path):
    tag = uuid.uuid4().hex[:6]
    cluster = add_cluster("clihalt", env="staging", labels={"pol": tag, "team": "core"})
    name = f"halt-{tag}"
    bundle_file = tmp_path / "bundle.yaml"
    bundle_file.write_text(yaml.safe_dump({
        "name": name, "source": {"directory": "manifests"}, "targets": {"selector": {"labels": {"pol": tag}}},
        "stages": [{"name": "all"}], "timeout_seconds": 20, "poll_interval_seconds": 0.05}))
    for level in ("low", "high"):
        write_manifests(tmp_path / "manifests", level)
        run = await regatta(queue_settings, "policy", "rollout", "--file", str(bundle_file), "--wait")
        assert run.returncode == 0, run.stdout + run.stderr
    # Someone edits the field by hand (kubectl patch): it is theirs now, and the rollback to "low" meets it.
    taken = http.patch(f"{simulator.url}/k8s/{cluster}/api/v1/namespaces/kube-system/configmaps/limits",
                        params={"fieldManager": "kubectl-patch"}, json={"data": {"level": "mine"}}, timeout=10,
                        headers={"Authorization": f"Bearer {simulator.world.api_token}",
                                 "Content-Type": "application/merge-patch+json"})
    assert taken.status_code == 200, taken.text

    back = await regatta(queue_settings, "policy", "rollback", name, "--wait")
    assert back.returncode == 1 and "halted" in back.stderr, back.stdout + back.stderr
    assert live(simulator, cluster, "limits").json()["data"]["level"] == "mine"  # nothing of theirs was taken
    shown = await regatta(queue_settings, "op", "status", f"policy-{name}", "--output", "json")
    assert shown.returncode == 1, shown.stdout + shown.stderr
    found = json.loads(shown.stdout)
    assert (found["status"], found["outcome"], found["succeeded"]) == ("COMPLETED", "halted", False)
    table = await regatta(queue_settings, "op", "status", f"policy-{name}")
    assert table.returncode == 1 and "PolicyRollout: COMPLETED → halted" in table.stdout, table.stdout
    assert "kubectl-patch" in table.stdout + table.stderr  # why: whose field it met


async def test_a_preview_of_a_bundle_that_makes_its_own_namespace_says_what_it_would_create_in_it(
        queue_settings, add_cluster, simulator, tmp_path):
    """An API server refuses an object in a namespace that does not exist, a dry run too (NamespaceLifecycle): a
    preview asks nothing of the server for what goes into a namespace the bundle itself makes."""
    tag = uuid.uuid4().hex[:6]
    cluster = add_cluster("clins", env="staging", labels={"ns": tag})
    bundle_file = tmp_path / "bundle.yaml"
    bundle_file.write_text(yaml.safe_dump({
        "name": f"team-{tag}", "targets": {"selector": {"labels": {"ns": tag}}},
        "manifests": [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": f"team-{tag}"}},
                      {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "owners", "namespace": f"team-{tag}"},
                       "data": {"team": tag}}]}))
    preview = await regatta(queue_settings, "policy", "preview", "--file", str(bundle_file), "--output", "json")
    assert preview.returncode == 0, preview.stdout + preview.stderr
    [answer] = [a for a in json.loads(preview.stdout) if a["cluster"] == cluster]
    assert [(c["action"], c["key"]["kind"]) for c in answer["changes"]] == [
        ("would_create", "Namespace"), ("would_create", "ConfigMap")]
    refused = http.post(f"{simulator.url}/k8s/{cluster}/api/v1/namespaces/team-{tag}/configmaps", timeout=10,
                        headers={"Authorization": f"Bearer {simulator.world.api_token}"},
                        json={"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "owners"}})
    assert refused.status_code == 404 and f'namespaces \\"team-{tag}\\" not found' in refused.text, refused.text


async def test_a_preview_says_a_site_cluster_is_reached_by_its_agent_alone_and_still_shows_what_it_would_be_given(
        queue_settings, add_cluster, simulator, inventory, tmp_path):
    """The CLI reads clusters from where it runs; a cluster behind a site's agent answers the agent alone (its
    central credentials refused): the preview says so for that cluster, shows the objects it would be given, and
    compares the others with what is live."""
    from tests.integration.sites import add_site_cluster

    tag = uuid.uuid4().hex[:6]
    central = add_cluster("clprv", env="staging", labels={"prv": tag})
    behind = add_site_cluster(simulator, inventory, site="dc7", labels={"prv": tag, "env": "staging"})
    bundle_file = tmp_path / "bundle.yaml"
    bundle_file.write_text(yaml.safe_dump({
        "name": f"site-{tag}", "targets": {"selector": {"labels": {"prv": tag}}},
        "manifests": [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "limits", "namespace": "kube-system"},
                       "data": {"level": "low"}}]}))
    preview = await regatta(queue_settings, "policy", "preview", "--file", str(bundle_file), "--output", "json")
    assert preview.returncode == 0, preview.stdout + preview.stderr
    answers = {a["cluster"]: a for a in json.loads(preview.stdout) if a["included"]}
    assert answers[central]["reached"] and [c["action"] for c in answers[central]["changes"]] == ["would_create"]
    assert not answers[behind]["reached"] and answers[behind]["changes"] is None  # not compared, not "no change"
    assert "site agent of dc7" in answers[behind]["because"] and answers[behind]["objects"][0]["data"] == {"level": "low"}
    shown = await regatta(queue_settings, "policy", "preview", "--file", str(bundle_file))
    assert shown.returncode == 0 and "not compared with what is live: behind the site agent of dc7" in shown.stdout, (
        shown.stdout + shown.stderr)
    assert "give  ConfigMap kube-system/limits" in shown.stdout, shown.stdout  # what it would be given, listed
