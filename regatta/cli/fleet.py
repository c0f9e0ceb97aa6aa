"""`regatta fleet snapshot`: a twin of the real fleet, as a fleet file the simulator loads, to rehearse an operation on
(docs/rehearsals.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from regatta.cli.arguments import parse_selector
from regatta.cli.context import open_inventory
from regatta.cli.exits import Refused, run_command
from regatta.cli.render import console, errors, said
from regatta.rules import selectors
from regatta.settings import Settings

fleet_app = typer.Typer(no_args_is_help=True, help="The fleet as a whole: a twin of it to rehearse operations on.")


@fleet_app.command("snapshot")
def fleet_snapshot(
    output: Annotated[str, typer.Option("--output", help="the fleet file to write (- for stdout)")],
    selector: Annotated[str | None, typer.Option(help="label selector as kubectl -l takes it, e.g. 'env in (staging,prod),team=payments,!pci'")] = None,
    site: Annotated[str | None, typer.Option(envvar="REGATTA_SITE", help="read as this site's agent: its clusters, with"
                                             " its credentials (the others are left out)")] = None,
):
    """Read each cluster now, through the clouds' APIs and its API server as a worker does (versions, node pools and
    what their nodes offer, Deployments, StatefulSets, bare pods, their requests and readiness, every
    PodDisruptionBudget; never a Secret or a ConfigMap) and write a fleet file the simulator loads: `regatta sim
    --fleet FILE` or `regatta dev --fleet FILE`. Each cloud's step times are calibrated from the upgrades Regatta
    recorded. A cluster that cannot be read is left out and named; the exit code is 0 when any was read."""

    def body():
        from regatta.formats.fleet_file import dump_fleet
        from regatta.formats.kubeconfig import write_private
        from regatta.inventory.twin_snapshot import snapshot
        from regatta.kube.connect import ClusterConnections

        if output != "-" and not Path(output).parent.is_dir():
            raise Refused(f"--output {output}: its directory {Path(output).parent} does not exist")
        wanted = parse_selector(selector)
        inventory = open_inventory()
        records = [r for r in inventory.list_clusters() if selectors.labels_match(wanted, r.labels)]
        if not records:
            raise Refused(f"no cluster in the inventory matches --selector {selector}" if selector
                          else "the inventory holds no cluster: `regatta clusters import FLEET.yaml` first")
        twin = snapshot(ClusterConnections(sim_url=Settings.from_env().sim_url, site=site), inventory, records)
        if not twin.fleet.clusters:
            raise Refused("no cluster could be read: " + "; ".join(f"{m.cluster}: {m.why}" for m in twin.left_out))
        header = [f"A twin of {len(twin.fleet.clusters)} clusters, read {twin.taken_at:%Y-%m-%d %H:%M:%S}Z by `regatta"
                  f" fleet snapshot{' --selector ' + selector if selector else ''}`.",
                  "Load it with `regatta sim --fleet FILE` or `regatta dev --fleet FILE` (docs/rehearsals.md)."]
        header += [f"timings for {c.provider}: {c.how}" for c in twin.calibrations]
        header += [f"left out of {m.cluster}: {m.what}: {m.why}" for m in twin.left_out]
        text = dump_fleet(twin.fleet, header=header)
        if output == "-":
            print(text, end="")
        else:  # it names subnets, roles and every workload: for its owner alone, as a kubeconfig is
            write_private(output, text)
        say = errors if output == "-" else console
        lines = [f"twin of {len(twin.fleet.clusters)} clusters" + (f" written to {output}" if output != "-" else ""),
                 *(f"  {c.provider}: {c.how}" for c in twin.calibrations),
                 *(f"  left out of {m.cluster}: {m.what} ({m.why})" for m in twin.left_out)]
        for line in lines:  # as text: what a cluster or an error says reaches the terminal without markup or escapes
            say.print(said(line), highlight=False)

    run_command(body)
