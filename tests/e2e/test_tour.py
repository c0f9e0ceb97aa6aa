"""The tour is a test: every command of README.md's tour, then every command of docs/tour.md, runs in the order
written against one `regatta dev --demo` (time scale 0: the simulated clouds finish at once; the fleet's clock is
moved where the docs move it), and what the docs say a command shows is checked.

The commands are read from the docs themselves (their ```sh blocks), so a command changed there is run here as
changed; STEPS says, command by command, what to wait for before it (what the docs tell a reader to wait for) and
what it must show. A command in the docs that STEPS does not name, or one STEPS names that the docs dropped,
fails the test: the two are kept together. Default ports in the docs are the stack's ports here, and /tmp/ is
the test's own directory.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import os
import re
import subprocess
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from regatta.settings import Settings
from tests.e2e.dev_stack import start_dev, stop_dev
from tests.shared_http import http
from tests.warm_cli import WARM

ROOT = Path(__file__).parents[2]
DOCS = [(ROOT / "README.md", "## A tour of the demo", "## Architecture"), (ROOT / "docs" / "tour.md", None, None)]
WAVE = "wave-2026-12-patch"
BUNDLE = "policy-platform-baseline"


def tour_commands() -> list[str]:
    """Each command line of the tours' ```sh blocks, in order: continuations joined, comment lines left out."""
    commands = []
    for path, start, end in DOCS:
        text = path.read_text()
        if start is not None and end is not None:
            text = text[text.index(start):text.index(end)]
        for block in re.findall(r"```sh\n(.*?)```", text, re.S):
            for line in re.sub(r"\\\n\s*", " ", block).splitlines():
                if line.strip() and not line.strip().startswith("#"):
                    commands.append(line.strip())
    return commands


def without_comment(line: str) -> str:
    return re.sub(r"\s+#\s.*$", "", line).strip()


class Tour:
    """The running stack as the tour's reader has it: its addresses, and a look at an operation."""

    def __init__(self, info: dict, env: dict, scratch: Path):
        self.info, self.env, self.scratch = info, env, scratch
        self.settings = Settings.from_env(env)

    def sim(self, path: str) -> dict:
        return http.get(f"{self.env['REGATTA_SIM_URL']}{path}", timeout=30).json()

    def time_scale(self, scale: float) -> None:
        http.post(f"{self.env['REGATTA_SIM_URL']}/sim/time-scale", params={"scale": scale}, timeout=30).raise_for_status()

    def version(self, cluster: str) -> str:
        return self.sim(f"/sim/report?cluster={cluster}")["clusters"][cluster]["control_plane_version"]

    async def until(self, operation_id: str, check: Callable[[dict], bool], *, timeout: float = 240) -> dict:
        """Wait, as the docs tell the reader to, until the operation's status passes `check`."""
        from regatta.temporal.operations import status

        deadline = asyncio.get_running_loop().time() + timeout
        found: dict = {}
        while True:
            try:
                found = await status(self.settings, operation_id)
                if check(found):
                    return found
            except Exception as error:  # noqa: BLE001 - not started yet: look again
                found = {"error": str(error)}
            assert asyncio.get_running_loop().time() < deadline, f"{operation_id} never got there: {found}"
            await asyncio.sleep(0.2)


def phase(name: str) -> Callable[[dict], bool]:
    return lambda found: (found.get("progress") or {}).get("phase") == name


def ended(found: dict) -> bool:
    return found.get("status") not in (None, "RUNNING")


def stage_is(stage: str, status: str) -> Callable[[dict], bool]:
    return lambda found: any(s["name"] == stage and s["status"] == status
                             for s in (found.get("progress") or {}).get("stages", []))


def waiting_window(stage: str) -> Callable[[dict], bool]:
    return lambda found: any(s["name"] == stage and any(c["status"] == "waiting_window" for c in s["clusters"])
                             for s in (found.get("progress") or {}).get("stages", []))


@dataclass
class Step:
    command: str
    says: tuple[str, ...] = ()
    exit: int = 0
    not_said: tuple[str, ...] = ("Traceback",)
    before: Callable[[Tour], Awaitable[object] | None] | None = None
    check: Callable[[Tour, subprocess.CompletedProcess], None] | None = None


def on(operation_id: str, check: Callable[[dict], bool]) -> Callable[[Tour], Awaitable[object]]:
    return lambda tour: tour.until(operation_id, check)


def through_the_bundles_stages() -> list[Step]:
    """What the docs say after each rollout of platform-baseline: past staging's soak in audit, then in enforce, and
    the approval prod's enforcement waits for."""
    return [
        Step(f"regatta sim-clock --to-next {BUNDLE}", says=("the end of stage staging-audit's soak",),
             before=on(BUNDLE, stage_is("staging-audit", "soaking"))),
        Step(f"regatta sim-clock --to-next {BUNDLE}", says=("the end of stage staging-enforce's soak",),
             before=on(BUNDLE, stage_is("staging-enforce", "soaking"))),
        Step(f"regatta op approve {BUNDLE} --approver someone-else --stage prod-enforce", says=("approve: accepted",),
             before=on(BUNDLE, phase("awaiting_approval"))),
    ]


STEPS = [
    # README.md
    Step("regatta clusters list --selector env=prod", says=("eks-prod-use1", "onprem-prod-fra"),
         before=on("cluster-eks-prod-use1", ended)),  # the demo's upgrade, followed in the first shell
    Step("regatta upgrade start eks-staging-euw1 --to 1.35 --strategy blue_green --ticket CHG-1 --wait",
         check=lambda tour, _: _equal(tour.version("eks-staging-euw1"), "1.35")),
    Step("regatta upgrade start eks-prod-apse2 --to 1.35 --plan-only",
         says=("eks-prod-apse2: 1.33 → 1.35 by surge, 2 minors, one at a time", "then a soak of 300s")),
    Step("regatta upgrade readiness --to 1.35", says=("onprem-prod-fra blocking", "v1beta3 FlowSchema is not served from 1.32")),
    Step("regatta sim-clock --set 2026-12-07T09:00:00Z", says=("fleet clock: 2026-12-07T09:00:00",)),
    Step("regatta wave start --file examples/wave.yaml --plan-only", says=("canary", "staging", "prod-eu", "prod-rest")),
    Step("regatta wave start --file examples/wave.yaml --ticket CHG-3", says=(WAVE,)),
    Step(f"regatta sim-clock --to-next {WAVE}", says=("the end of stage canary's soak",),
         before=on(WAVE, stage_is("canary", "soaking"))),
    Step(f"regatta sim-clock --to-next {WAVE}", says=("the end of stage staging's soak",),
         before=on(WAVE, stage_is("staging", "soaking"))),
    Step(f"regatta op approve {WAVE} --approver someone-else", before=on(WAVE, phase("awaiting_approval"))),
    Step(f"regatta sim-clock --to-next {WAVE}", says=("fleet clock: 2026-12-08T01:00:01", "maintenance window opens"),
         before=on(WAVE, waiting_window("prod-eu"))),
    Step(f"regatta sim-clock --to-next {WAVE}", says=("the end of stage prod-eu's soak",),
         before=on(WAVE, stage_is("prod-eu", "soaking"))),
    Step(f"regatta op approve {WAVE} --approver someone-else", before=on(WAVE, phase("awaiting_approval"))),
    Step("regatta sim-clock --advance 5m", says=("fleet clock: 2026-12-08T",),
         before=lambda tour: asyncio.gather(*(tour.until(f"cluster-{name}", phase("soaking"))
                                              for name in ("eks-prod-apse2", "aks-prod-eastus")))),
    Step(f"regatta op status {WAVE}", before=on(WAVE, ended),
         says=("COMPLETED → succeeded", "onprem-prod-fra: not_ready", "3 at_target, 1 not_ready, 7 succeeded")),
    Step("regatta op list", says=(f"{WAVE} PatchWave — COMPLETED succeeded",  # plain columns, as kubectl prints
                                  "cluster-onprem-prod-fra ClusterUpgrade onprem-prod-fra FAILED failed")),
    Step("regatta failover eks-prod-use1 --to eks-dr-usw2 --drill --wait",
         says=("could take over eks-prod-use1 with RTO", "nothing was fenced and no traffic moved")),
    Step("regatta policy preview --file examples/bundle.yaml --cluster eks-prod-use1",
         says=("nothing is changed by a preview", "create ConfigMap kube-system/platform-identity")),
    Step("regatta policy rollout --file examples/bundle.yaml --ticket CHG-7", says=(BUNDLE,)),
    *through_the_bundles_stages(),
    Step("regatta policy status --bundle platform-baseline && regatta policy drift sweep --wait",
         says=("4 compliant", "0 new drifts"), before=on(BUNDLE, ended)),
    Step("regatta policy rollout --file examples/app-bundle.yaml --wait", says=("storefront", "rolled out: 3 applied")),
    Step("regatta placement show storefront", says=("gke-prod-usc1 80", "web 4", "web 3", "web 2", "not chosen")),
    Step('regatta cluster evacuate gke-prod-usc1 --reason "replaced blue/green" --wait',
         says=("gke-prod-usc1 runs no placed application now (moved storefront)",)),
    Step("regatta token create --name me --role viewer --env '*'", says=("rgt_", "token me: viewer in *")),
    Step('regatta upgrade rollback eks-prod-use1 --reason "1.35 breaks checkout" --wait', says=("back on 1.34",),
         check=lambda tour, _: _equal(tour.version("eks-prod-use1"), "1.34")),
    Step("regatta clusters cost --by environment", says=("ENVIRONMENT", "prod", "all")),
    Step("regatta audit list --cluster eks-staging-euw1 && regatta audit verify",
         says=("CHG-1 upgrade started", "audit trail intact")),
    Step("curl -s 127.0.0.1:8600/sim/report | python3 -m json.tool",
         check=lambda tour, done: _no_violations(json.loads(done.stdout))),
    Step("regatta clusters kubeconfig eks-prod-use1 --output /tmp/eks-prod-use1.kubeconfig"),
    Step("kubectl --kubeconfig /tmp/eks-prod-use1.kubeconfig get nodes", says=("v1.34",)),

    # docs/tour.md: steering runs at the demo's own time scale, so that there is something to pause
    Step("regatta upgrade start eks-dev-apse2 --to 1.35 --ticket CHG-10 --poll-interval 1",
         says=("started cluster-eks-dev-apse2",), before=lambda tour: tour.time_scale(0.01)),
    Step('regatta op pause cluster-eks-dev-apse2 --reason "customer event"', says=("pause: accepted",),
         before=on("cluster-eks-dev-apse2", lambda found: (found.get("progress") or {}).get("phase") in (
             "control_plane", "node_pools"))),
    Step("regatta op status cluster-eks-dev-apse2", says=("paused", "customer event"),
         before=on("cluster-eks-dev-apse2", lambda found: (found.get("progress") or {}).get("paused") is True)),
    Step("regatta op resume cluster-eks-dev-apse2", says=("resume: accepted",)),
    Step('regatta op abort cluster-eks-dev-apse2 --reason "pager storm"', says=("abort: accepted",)),
    Step("regatta op status cluster-eks-dev-apse2", exit=1, says=("aborted", "pager storm"),
         before=lambda tour: _ended_then_fast(tour, "cluster-eks-dev-apse2")),
    Step("regatta audit list --cluster eks-dev-apse2", says=("pause", "resume", "abort", "pager storm")),
    Step('regatta cluster hold eks-prod-use1 --until 48h --reason "black friday"', says=("black friday",)),
    Step("regatta wave plan --file examples/wave.yaml --cluster eks-prod-use1",
         says=("eks-prod-use1 prod-rest held Thu 2026-12-10", "black friday")),
    Step("regatta cluster release eks-prod-use1"),
    Step("regatta wave plan --file examples/wave.yaml --cluster eks-prod-use1",
         says=("eks-prod-use1 prod-rest pending Tue 2026-12-08", "stage prod-eu ends and soaks 60 minutes")),
    Step("regatta schedule create monthly --file examples/wave.yaml --days tue --week-of-month 2 --at 02:00"
         " --timezone Europe/Berlin", says=("monthly",)),
    Step("regatta schedule sweep --every-minutes 60"),
    Step("regatta schedule list", says=("monthly",)),
    Step("regatta provision --file examples/cluster.yaml --wait", says=("gke-search-euw4",),
         check=lambda tour, _: _equal("gke-search-euw4" in tour.sim("/sim/report")["clusters"], True)),
    Step('regatta decommission gke-search-euw4 --ticket CHG-2002 --force-empty --reason "demo over"',
         says=("; it waits for approval by someone else:", "regatta op approve cluster-gke-search-euw4"),
         not_said=("still run",)),
    Step("regatta op approve cluster-gke-search-euw4 --approver someone-else", says=("approve: accepted",)),
    Step("regatta decommission aks-dev-westeurope --ticket CHG-2003", exit=1,
         says=("started and ended at once", "still runs workloads"),
         before=on("cluster-gke-search-euw4", ended)),
    Step("regatta clusters kubeconfig eks-prod-use1 --output /tmp/p.kubeconfig"),
    Step("kubectl --kubeconfig /tmp/p.kubeconfig -n kube-system patch configmap platform-identity --type merge -p"
         """ '{"data":{"region":"moon"}}'""", says=("patched",)),
    Step("regatta policy drift sweep --bundle platform-baseline --wait", says=("1 new drift",)),
    Step("regatta policy drift list --cluster eks-prod-use1", says=("/data/region", "us-east-1", "moon", "kubectl-patch")),
    Step("kubectl --kubeconfig /tmp/p.kubeconfig -n kube-system patch configmap platform-identity --type merge -p"
         """ '{"data":{"region":"us-east-1"}}'""", says=("patched",)),
    Step("cp -r examples/bundle.yaml examples/bundles /tmp/ && sed -i 's/log-level: info/log-level: debug/'"
         " /tmp/bundles/baseline-policies/platform-config.yaml"),
    Step("regatta policy rollout --file /tmp/bundle.yaml --ticket CHG-8", says=("started policy-platform-baseline",)),
    *through_the_bundles_stages(),
    Step("regatta policy rollback platform-baseline --ticket CHG-9", says=("started policy-platform-baseline",),
         before=on(BUNDLE, ended)),
    *through_the_bundles_stages(),
    Step("regatta policy history eks-prod-use1 platform-baseline", before=on(BUNDLE, ended),
         check=lambda tour, done: _rolled_back(_revisions(done.stdout))),
    Step("regatta dr list", says=("eks-prod-use1", "eks-dr-usw2")),
    Step("""curl -s -XPOST 127.0.0.1:8600/sim/regions -d '{"region": "us-east-1"}' -H 'content-type: application/json'""",
         says=("us-east-1",)),
    Step("regatta failover eks-prod-use1 --to eks-dr-usw2 --ticket INC-1 --fence-timeout 20",
         says=("; it waits for approval by someone else:", "regatta op approve cluster-eks-prod-use1"),
         not_said=("still run",)),
    Step("regatta op approve cluster-eks-prod-use1 --approver someone-else", says=("approve: accepted",)),
    Step("regatta op status cluster-eks-prod-use1", before=on("cluster-eks-prod-use1", ended),
         says=("DRFailover: COMPLETED → succeeded", "skipped: eks-prod-use1 did not answer for 20s", "RTO", "RPO")),
    Step("curl -s 127.0.0.1:8600/traffic/v1/records | python3 -m json.tool",
         check=lambda tour, done: _equal({r["service"]: r["weights"]["eks-dr-usw2"] for r in json.loads(done.stdout)[
             "records"] if r["service"] in ("checkout", "payments", "catalog")},
             {"checkout": 100, "payments": 100, "catalog": 100})),
    Step("""curl -s -XPOST 127.0.0.1:8600/sim/regions -d '{"region": "us-east-1", "unreachable": false}' -H"""
         """ 'content-type: application/json'"""),
    Step("regatta failback eks-prod-use1 --ticket CHG-2 && regatta op approve cluster-eks-prod-use1 --approver"
         " someone-else", says=("; it waits for approval by someone else:", "approve: accepted"), not_said=("still run",)),
    Step("regatta op status cluster-eks-prod-use1", says=("DRFailback",), before=on("cluster-eks-prod-use1", ended)),
    Step("TOKEN=$(regatta token create --name servicenow --role operator --env dev)"),
    Step("""curl -s -XPOST 127.0.0.1:8700/v1/operations -H "Authorization: Bearer $TOKEN" -H 'content-type:"""
         """ application/json' -d '{"kind": "upgrade", "ticket": "CHG-API-1", "input": {"cluster": "aks-dev-westeurope","""
         """ "target_version": "1.35"}}'""", says=('"operation_id":"cluster-aks-dev-westeurope"',)),
    Step("""curl -s 127.0.0.1:8700/v1/operations/cluster-aks-dev-westeurope -H "Authorization: Bearer $TOKEN" |"""
         " python3 -m json.tool", says=('"workflow_type": "ClusterUpgrade"',)),
    Step("regatta audit list --cluster aks-dev-westeurope", says=("servicenow", "CHG-API-1"),
         before=on("cluster-aks-dev-westeurope", ended)),
    Step("regatta audit verify", says=("audit trail intact",)),
    Step("regatta clusters kubeconfig eks-staging-use1 --output /tmp/staging.kubeconfig"),
    Step("export KUBECONFIG=/tmp/staging.kubeconfig"),
    Step("kubectl get nodes -o wide", says=("v1.35",)),
    Step("NODE=$(kubectl get nodes -o name | head -1 | cut -d/ -f2)"),
    Step("kubectl get pods -A --field-selector spec.nodeName=$NODE"),
    Step("kubectl describe node $NODE", says=("Name:",)),
    Step("kubectl drain $NODE --ignore-daemonsets --timeout=60s", says=("drained",)),
    Step("kubectl get pdb -A", says=("ALLOWED DISRUPTIONS",)),
    Step("kubectl uncordon $NODE", says=("uncordoned",)),
    Step("kubectl apply --server-side --field-manager sre -f examples/my-configmap.yaml", says=("serverside-applied",)),
    Step("kubectl diff --server-side --field-manager sre -f examples/my-configmap.yaml"),
    Step("regatta policy rollout --file examples/app-bundle.yaml --plan-only", says=("not placed",)),
    Step("regatta placement show storefront", says=("moved off gke-prod-usc1", "eks-prod-euw1 51.4")),
    Step("regatta audit list --cluster gke-prod-usc1",
         says=("give_share succeeded storefront: 3 of", "storefront: 0 of", "withdraw")),
]


async def _ended_then_fast(tour: Tour, operation_id: str) -> None:
    await tour.until(operation_id, ended)
    tour.time_scale(0)


def _equal(found: object, wanted: object) -> None:
    assert found == wanted, f"{found!r}, not {wanted!r}"


def _revisions(history: str) -> list[str]:
    """The revisions a cluster held in turn, as `policy history` lists them (each once, however many passes)."""
    held = re.findall(r" (?:compliant|drifted|non_compliant) +([0-9a-f]{16}) ", history)
    return [revision for at, revision in enumerate(held) if at == 0 or held[at - 1] != revision]


def _rolled_back(revisions: list[str]) -> None:
    """The first revision, the changed one, then the first again."""
    assert len(revisions) == 3 and revisions[0] == revisions[2] != revisions[1], revisions


def _no_violations(report: dict) -> None:
    for kind in ("pdb_violations", "skew_violations", "double_drains"):
        assert report[kind] == [], (kind, report[kind])


def as_run_here(line: str, tour: Tour) -> str:
    """The docs' command on this stack's ports, writing into the test's directory."""
    sim, api = tour.env["REGATTA_SIM_URL"].removeprefix("http://"), tour.info["pieces"]["api"]["address"]
    return (line.replace("127.0.0.1:8600", sim).replace("127.0.0.1:8700", api.removeprefix("http://"))
            .replace("/tmp/", f"{tour.scratch}/"))


def test_every_command_of_the_tours_is_a_step_in_order():
    assert [without_comment(c) for c in tour_commands()] == [s.command for s in STEPS]


@pytest.mark.timeout(540)  # about two and a half minutes alone; a loaded CI machine has taken over five
async def test_the_tour_runs_in_order_against_regatta_dev(tmp_path):
    dev, described, info, env = start_dev(tmp_path / "home", "--demo", "--time-scale", "0")
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    # `regatta` on the reader's PATH is the same command line forked warm (tests/warm_cli.py) onto the shell's own
    # streams: a cold start per command was most of the tour's minutes; `regatta dev` above starts cold, as it is typed.
    shell_path = os.pathsep.join((WARM.stand_in_directory(), str(ROOT / ".venv" / "bin"), env["PATH"]))
    tour = Tour(info, {**env, **info["env"], "PATH": shell_path,
                       "COLUMNS": "200", "USER": "sre-tour"}, scratch)
    try:
        for number, (line, step) in enumerate(zip(tour_commands(), STEPS, strict=True), start=1):
            began = asyncio.get_running_loop().time()
            if step.before is not None and inspect.isawaitable(waiting := step.before(tour)):
                await waiting
            waited = asyncio.get_running_loop().time() - began
            command = as_run_here(without_comment(line), tour)
            if exported := re.fullmatch(r"export (\w+)=(\S+)", command):  # what the reader's shell keeps
                tour.env[exported[1]] = exported[2]
                command = "true"
            assigned = re.fullmatch(r"(\w+)=\$\((.*)\)", command)
            process = await asyncio.create_subprocess_exec(
                "bash", "-c", assigned[2] if assigned else command, cwd=ROOT, env=tour.env,  # a reader's shell
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
            out, err = await asyncio.wait_for(process.communicate(), timeout=300)
            assert process.returncode is not None
            done = subprocess.CompletedProcess(line, process.returncode, out.decode(), err.decode())
            if assigned:
                tour.env[assigned[1]] = done.stdout.strip()
            took = asyncio.get_running_loop().time() - began - waited
            said = f"step {number} (waited {waited:.1f} s, ran {took:.1f} s): {line}\n--- stdout\n{done.stdout}\n--- stderr\n{done.stderr}"
            print(said)
            assert done.returncode == step.exit, said
            shown = " ".join((done.stdout + done.stderr).split())
            for words in step.says:
                assert words in shown, f"{words!r} not shown\n{said}"
            for words in step.not_said:
                assert words not in shown, f"{words!r} shown\n{said}"
            if step.check is not None:
                step.check(tour, done)
    finally:
        stop_dev(dev, described)
