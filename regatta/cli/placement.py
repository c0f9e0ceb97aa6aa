"""`regatta placement list|show`: where each placed application runs, each cluster's share of its
replicas, and why ("why did my app land there?"): the score and its terms for each chosen
cluster, the reason each other cluster was left out. (`regatta cluster evacuate` moves them.)
"""

from __future__ import annotations

import json
from typing import Annotated

import typer

from regatta.cli.arguments import ListOutput, ListOutputOption, Output, OutputOption
from regatta.cli.context import open_inventory
from regatta.cli.exits import run_command
from regatta.cli.render import console, print_columns
from regatta.temporal.outcomes import OperationRefused as Refused

placement_app = typer.Typer(no_args_is_help=True, help="Placed applications: where they run and why.")


@placement_app.command("list")
def placement_list(output: ListOutputOption = ListOutput.table):
    """Every placed application: its clusters and their shares."""
    from regatta.cli.render import show_list

    def body():
        decisions = open_inventory().placements()
        show_list(decisions, output, title=f"{len(decisions)} placed applications",
                  columns=("APP", "REVISION", "PICK", "CLUSTERS (REPLICAS)", "DECIDED (UTC)", "BY"),
                  row=lambda d: (d.app, d.revision, d.pick,
                                 ", ".join(f"{s.cluster} ({sum(s.replicas.values())})" for s in d.chosen),
                                 f"{d.decided_at:%Y-%m-%d %H:%M}", d.note or d.operation_id),
                  name=lambda d: d.app)

    run_command(body)


@placement_app.command("show")
def placement_show(app: Annotated[str, typer.Argument(help="the application bundle's name")],
                   output: OutputOption = Output.table):
    """One application: each chosen cluster with its score, the terms that made it and its share;
    each cluster left out with why."""

    def body():
        inventory = open_inventory()
        decision = inventory.placement(app)
        if decision is None:
            known = ", ".join(d.app for d in inventory.placements()) or "none yet"
            raise Refused(f"{app} is not placed (placed applications: {known}); roll out a bundle with a placement")
        if output == "json":
            print(json.dumps(decision.model_dump(mode="json"), indent=2))
            return
        totals = ", ".join(f"{w.key} {w.replicas}" for w in decision.workloads)
        console.print(f"[bold]{decision.app}[/] revision {decision.revision}, pick {decision.pick}: {totals}")
        console.print(f"decided {decision.decided_at:%Y-%m-%d %H:%M} UTC: {decision.note or decision.operation_id}")
        chosen = []
        for share in sorted(decision.chosen, key=lambda s: (-s.score, s.cluster)):
            terms = ", ".join(f"{name} {points:g}" for name, points in share.terms.items()) or "—"
            replicas = ", ".join(f"{key.split('/')[-1]} {n}" for key, n in share.replicas.items())
            chosen.append((share.cluster, f"{share.score:g}", terms, replicas))
        console.print("chosen:")  # a heading on stdout: two tables follow each other
        print_columns("", ("CLUSTER", "SCORE", "TERMS", "REPLICAS"), chosen)
        if decision.not_chosen:
            console.print("not chosen:")
            print_columns("", ("CLUSTER", "WHY"), list(decision.not_chosen.items()))

    run_command(body)
