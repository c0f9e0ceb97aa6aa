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


@deploy_app.command("status")
def deploy_status(output: OutputOption = Output.table):
    """The worker deployment's builds (REGATTA_DEPLOYMENT): which is current, which ramps and by how much, each
    one's drainage, and how many runs pinned to it are still open (its workers may stop once none are)."""
    from regatta.settings import Settings
    from regatta.temporal.deployments import status

    async def body():
        versions = await status(Settings.from_env())
        if output == "json":
            import json

            print(json.dumps([v.__dict__ for v in versions], indent=2))
            return
        for v in versions:
            role = "current" if v.current else (f"ramping {v.ramping_percent:g}%" if v.ramping_percent is not None else "")
            console.print(f"{v.build_id:24} {role:14} {v.status:10} drainage {v.drainage or '-':10} open pinned runs"
                          f" {v.open_pinned}" + ("  (its workers may stop)" if not v.current and v.ramping_percent is None
                                                  and v.open_pinned == 0 else ""))

    run_command(body())


@deploy_app.command("promote")
def deploy_promote(
    build_id: Annotated[str, typer.Argument(help="the build to make current (its workers must be polling)")],
    skip_check: Annotated[bool, typer.Option(help="promote without the replay gate (never in production)")] = False,
    scope: Annotated[str | None, typer.Option(help="a visibility query that narrows the runs the gate replays")] = None,
):
    """Make BUILD_ID the current version, after the replay gate (`regatta deploy check`, run here with this build's
    code) finds that every open run replays on it: new runs start there, pinned ones stay where they began, and the
    long-lived ones move to it at their next task. Refused (exit 1) when a run would break."""
    from regatta.cli.exits import EXIT_FAILED
    from regatta.settings import Settings
    from regatta.temporal.connect import connect
    from regatta.temporal.deployments import promote
    from workers import replay_gate

    async def body():
        settings = Settings.from_env()
        if not skip_check:
            verdicts = await replay_gate.check(await connect(settings), closed_sample=0, scope=scope)
            found = replay_gate.summary(verdicts)
            if not found["promotable"]:
                for v in verdicts:
                    if v.verdict == "breaks":
                        errors.print(f"breaks {v.workflow_type} {v.workflow_id} at event {v.event_id}: {v.detail}",
                                     markup=False, highlight=False)
                errors.print(f"[bold red]not promoted:[/] {found['breaks']} open run(s) would break on this build")
                raise typer.Exit(EXIT_FAILED)
            console.print(f"{found['replayed']} open runs replay on this build")
        await promote(settings, build_id)
        console.print(f"build {build_id} is current in deployment {settings.deployment}")

    run_command(body())


@deploy_app.command("ramp")
def deploy_ramp(
    build_id: Annotated[str, typer.Argument(help="the build to ramp to")],
    percent: Annotated[float, typer.Option("--percent", min=0, max=100, help="share of new runs sent to it")],
):
    """Send PERCENT of new runs (and of long-lived runs moving at their next task) to BUILD_ID beside the current
    build; `regatta deploy promote` makes it current."""
    from regatta.settings import Settings
    from regatta.temporal.deployments import ramp

    async def body():
        await ramp(Settings.from_env(), build_id, percent)
        console.print(f"build {build_id} ramping at {percent:g}%")

    run_command(body())
