"""`regatta deploy secrets DIR`: the set-up step of a production deployment (docs/production.md); `regatta deploy
check`: the replay gate before a new build of the workers takes over what is running (workers/replay_gate.py).
"""

from __future__ import annotations

from typing import Annotated

import typer

from regatta.cli.arguments import Output, OutputOption
from regatta.cli.exits import run_command
from regatta.cli.render import console, errors

deploy_app = typer.Typer(no_args_is_help=True, help="Setting up a production deployment (docker-compose.yml).")


@deploy_app.command("secrets")
def deploy_secrets(
    directory: Annotated[str, typer.Argument(help="where the secrets go: deploy/secrets, mounted read-only by the services")],
    temporal_name: Annotated[list[str] | None, typer.Option("--temporal-name", help="a name (or address) Temporal's"
                                                            " certificate answers to; repeat for several")] = None,
    days: Annotated[int, typer.Option(min=1, max=825, help="how long the certificates are valid")] = 365,
):
    """Make what a deployment needs and does not have yet, one directory per service: a CA and the
    certificates for mTLS between Temporal and everything that talks to it, the API's HTTPS certificate,
    the payload encryption key and the audit trail's key. Existing files are kept: delete one and run
    again to replace it."""
    from regatta.deploy_secrets import make_secrets

    def body():
        names = tuple(temporal_name or ("temporal", "localhost", "127.0.0.1"))
        for found in make_secrets(directory, temporal_names=names, days=days):
            console.print(f"{'made' if found.made else 'kept'}  {found.path}")

    run_command(body)


@deploy_app.command("check")
def deploy_check(
    closed: Annotated[int, typer.Option(min=0, max=1000, help="how many recently closed runs to replay too")] = 20,
    scope: Annotated[str | None, typer.Option(help="a visibility query that narrows what is replayed, e.g."
                                                   " \"WorkflowType = 'PatchWave'\"")] = None,
    output: OutputOption = Output.table,
):
    """Replay every open operation's history (and a sample of closed ones) on this build's workflow code, before
    this build takes over: exit 0 when every one replays, 1 naming each run this build would break and the event
    where it parts from its history (promote nothing then: add a workflow.patched branch), 3 when Temporal does not
    answer. Run it with the new build's `regatta`, pointed at the live namespace."""
    import json

    from regatta.cli.exits import EXIT_FAILED
    from regatta.settings import Settings
    from regatta.temporal.connect import connect
    from workers import replay_gate

    async def body():
        client = await connect(Settings.from_env())
        verdicts = await replay_gate.check(client, closed_sample=closed, scope=scope)
        found = replay_gate.summary(verdicts)
        if output == "json":
            print(json.dumps({**found, "runs": [v.__dict__ for v in verdicts]}, indent=2))
        else:
            for verdict in verdicts:
                if verdict.verdict == "breaks":
                    errors.print(f"[bold red]breaks[/] {verdict.workflow_type} {verdict.workflow_id} (run"
                                 f" {verdict.run_id}, {'open' if verdict.open else 'closed'}) at event {verdict.event_id}:"
                                 f" {verdict.detail}", markup=True, highlight=False)
            console.print(f"{found['replayed']} runs replayed on this build ({found['open']} open): "
                          + ("every one replays; this build may take over" if found["promotable"]
                             else f"{found['breaks']} would break; do not promote this build"))
        if not found["promotable"]:
            raise typer.Exit(EXIT_FAILED)

    run_command(body())
