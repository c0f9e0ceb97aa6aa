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
    include_pinned: Annotated[bool, typer.Option(help="replay runs pinned to their build too (they never move)")] = False,
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
        settings = Settings.from_env()
        client = await connect(settings)
        verdicts = await replay_gate.check(client, closed_sample=closed, scope=scope, task_queue=settings.task_queue,
                                           include_pinned=include_pinned)
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
    from regatta.settings import Settings
    from regatta.temporal.deployments import promote

    async def body():
        settings = Settings.from_env()
        if not skip_check:
            await _gate(settings, build_id, scope=scope, verb="promoted")
        await promote(settings, build_id)
        console.print(f"build {build_id} is current in deployment {settings.deployment}")

    run_command(body())


async def _gate(settings, build_id: str, *, scope: str | None, verb: str) -> None:
    """The replay gate before runs move to BUILD_ID, run with this build's code: which must be BUILD_ID's (the command
    run from its image, REGATTA_BUILD_ID saying so), or the check says nothing about it."""
    from regatta.cli.exits import EXIT_FAILED, Refused
    from regatta.temporal.connect import connect
    from workers import replay_gate

    if settings.build_id != build_id:
        raise Refused(f"this is build {settings.build_id or 'unknown'} (REGATTA_BUILD_ID), not {build_id}: run the"
                      f" command from build {build_id}'s own image, whose code the replay gate checks, or pass"
                      " --skip-check")
    verdicts = await replay_gate.check(await connect(settings), closed_sample=0, scope=scope, task_queue=settings.task_queue)
    found = replay_gate.summary(verdicts)
    if not found["promotable"]:
        for v in verdicts:
            if v.verdict == "breaks":
                errors.print(f"breaks {v.workflow_type} {v.workflow_id} at event {v.event_id}: {v.detail}",
                             markup=False, highlight=False)
        errors.print(f"[bold red]not {verb}:[/] {found['breaks']} open run(s) would break on this build")
        raise typer.Exit(EXIT_FAILED)
    console.print(f"{found['replayed']} open runs that would move replay on this build")


@deploy_app.command("ramp")
def deploy_ramp(
    build_id: Annotated[str, typer.Argument(help="the build to ramp to")],
    percent: Annotated[float, typer.Option("--percent", min=0, max=100, help="share of new runs sent to it")],
    skip_check: Annotated[bool, typer.Option(help="ramp without the replay gate (never in production)")] = False,
    scope: Annotated[str | None, typer.Option(help="a visibility query that narrows the runs the gate replays")] = None,
):
    """Send PERCENT of new runs (and of long-lived runs moving at their next task) to BUILD_ID beside the current
    build, after the replay gate; `regatta deploy promote` makes it current."""
    from regatta.settings import Settings
    from regatta.temporal.deployments import ramp

    async def body():
        settings = Settings.from_env()
        if not skip_check and percent > 0:  # long-lived runs move to a ramping build too
            await _gate(settings, build_id, scope=scope, verb="ramped")
        await ramp(settings, build_id, percent)
        console.print(f"build {build_id} ramping at {percent:g}%")

    run_command(body())
