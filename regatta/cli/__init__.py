"""`regatta`, the command line: one module per command group, wired onto one typer app here.

Exit codes are part of the interface scripts rely on (regatta/cli/exits.py): 0 done, 1 the
operation failed (or was aborted), 2 refused as bad input with nothing changed, 3 a server could not
be reached. The `regatta` console script is `main`, which flushes and exits with that code.
"""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer
from typer.core import TyperOption

from regatta.cli import (
    access,
    audit,
    clusters,
    codec,
    deploy,
    dr,
    fleet,
    lifecycle,
    op,
    pieces,
    placement,
    policy,
    schedule,
    tokens,
    upgrade,
    wave,
)


def _flags_without_a_type(option: TyperOption, ctx: Any) -> str | None:
    """typer 0.29 prints a type beside every option, and `<bool>` beside a flag (--wait, --help), which takes no
    value: a flag shows none. (A patch of typer's one method that draws the type column.)"""
    return None if option.is_flag else _option_type(option, ctx)


if hasattr(TyperOption, "display_type_rich"):  # typer before 0.29 draws no type column: nothing to patch
    _option_type = TyperOption.display_type_rich
    TyperOption.display_type_rich = _flags_without_a_type  # type: ignore[method-assign,assignment]

app = typer.Typer(no_args_is_help=True, add_completion=False, help="Regatta: run a fleet of Kubernetes clusters as one.")


def _version(asked: bool) -> None:
    if asked:
        from importlib.metadata import version

        print(f"regatta {version('regatta')}")
        raise typer.Exit(0)


@app.callback()
def _regatta(version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                                   help="print Regatta's version and exit")] = False) -> None:
    """Regatta: run a fleet of Kubernetes clusters as one."""


app.command()(pieces.dev)
app.command()(pieces.sim)
app.command("sim-clock")(pieces.sim_clock)
app.command()(pieces.api)
app.command()(pieces.worker)
app.command()(pieces.migrate)
app.command()(pieces.backup)
app.command()(pieces.restore)
app.command()(lifecycle.provision)
app.command()(lifecycle.decommission)
app.command()(dr.failover)
app.command()(dr.failback)
app.add_typer(clusters.clusters_app, name="clusters")
app.add_typer(clusters.cluster_app, name="cluster")
app.add_typer(fleet.fleet_app, name="fleet")
app.add_typer(upgrade.upgrade_app, name="upgrade")
app.add_typer(op.op_app, name="op")
app.add_typer(audit.audit_app, name="audit")
app.add_typer(dr.dr_app, name="dr")
app.add_typer(wave.wave_app, name="wave")
app.add_typer(policy.policy_app, name="policy")
app.add_typer(placement.placement_app, name="placement")
app.add_typer(schedule.schedule_app, name="schedule")
app.add_typer(tokens.token_app, name="token")
app.add_typer(access.access_app, name="access")
app.add_typer(codec.codec_app, name="codec")
app.add_typer(deploy.deploy_app, name="deploy")


def main() -> None:  # pragma: no cover - console entry point
    """Run the command, then leave without interpreter teardown: the Temporal client's Rust
    threads can abort it (SIGABRT instead of our exit code; temporalio/sdk-python#300), and the
    exit code is a promise to scripts. Everything the command wrote is flushed first."""
    import os

    code: int = 0
    try:
        app()
    except SystemExit as done:
        if isinstance(done.code, str):
            print(done.code, file=sys.stderr)
            code = 1
        else:
            code = done.code or 0
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
