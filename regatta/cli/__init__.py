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


def _flags_without_a_type(option: TyperOption, ctx: Any) -> str | None:
    """typer 0.29 prints a type beside every option, and `<bool>` beside a flag (--wait, --help), which takes no
    value: a flag shows none. (A patch of typer's one method that draws the type column.)"""
    return None if option.is_flag else _option_type(option, ctx)


if hasattr(TyperOption, "display_type_rich"):  # typer before 0.29 draws no type column: nothing to patch
    _option_type = TyperOption.display_type_rich
    TyperOption.display_type_rich = _flags_without_a_type  # type: ignore[method-assign,assignment]

# Each command and command group by the name it is called, and where it is written (module, attribute): only the one a
# command line names is imported (`regatta op status` need not import what `regatta dev` does: each module pulls in its
# own models, the Temporal SDK, SQLAlchemy...); `regatta --help` and `app` import them all.
COMMANDS: dict[str, tuple[str, str]] = {
    "dev": ("pieces", "dev"), "sim": ("pieces", "sim"), "sim-clock": ("pieces", "sim_clock"), "api": ("pieces", "api"),
    "worker": ("pieces", "worker"), "migrate": ("pieces", "migrate"), "backup": ("pieces", "backup"),
    "restore": ("pieces", "restore"), "provision": ("lifecycle", "provision"), "decommission": ("lifecycle", "decommission"),
    "failover": ("dr", "failover"), "failback": ("dr", "failback"),
}
GROUPS: dict[str, tuple[str, str]] = {
    "clusters": ("clusters", "clusters_app"), "cluster": ("clusters", "cluster_app"), "fleet": ("fleet", "fleet_app"),
    "upgrade": ("upgrade", "upgrade_app"), "op": ("op", "op_app"), "audit": ("audit", "audit_app"),
    "dr": ("dr", "dr_app"), "wave": ("wave", "wave_app"), "policy": ("policy", "policy_app"),
    "placement": ("placement", "placement_app"), "schedule": ("schedule", "schedule_app"),
    "token": ("tokens", "token_app"), "access": ("access", "access_app"), "codec": ("codec", "codec_app"),
    "deploy": ("deploy", "deploy_app"), "rehearsal": ("rehearse", "rehearsal_app"),
}


def _version(asked: bool) -> None:
    if asked:
        from importlib.metadata import version

        print(f"regatta {version('regatta')}")
        raise typer.Exit(0)


def _regatta(version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                                   help="print Regatta's version and exit")] = False) -> None:
    """Regatta: run a fleet of Kubernetes clusters as one."""


def build_app(only: str | None = None) -> typer.Typer:
    """The `regatta` command: every command and group, or with `only` that one alone (what a command line names)."""
    from importlib import import_module

    built = typer.Typer(no_args_is_help=True, add_completion=False, help="Regatta: run a fleet of Kubernetes clusters as one.")
    built.callback()(_regatta)  # a callback keeps one command a command of the group, not the whole app
    for name, (module, attribute) in COMMANDS.items():
        if only in (None, name):
            built.command(name)(getattr(import_module(f"regatta.cli.{module}"), attribute))
    for name, (module, attribute) in GROUPS.items():
        if only in (None, name):
            built.add_typer(getattr(import_module(f"regatta.cli.{module}"), attribute), name=name)
    return built


def _named(argv: list[str]) -> str | None:
    """The command or group a command line names (its first word, when it is one), else None: every one is built, so
    `--help` lists them all and a misspelt name is answered with the full list."""
    if argv[:1] == ["--version"]:
        return ""  # nothing but the version: no command need be built
    first = next((word for word in argv if not word.startswith("-")), None)
    return first if first in COMMANDS or first in GROUPS else None


def __getattr__(name: str) -> Any:
    if name == "app":  # the whole command, for a test or a tool that walks it
        return build_app()
    raise AttributeError(name)


def main() -> None:  # pragma: no cover - console entry point
    """Run the command, then leave without interpreter teardown: the Temporal client's Rust
    threads can abort it (SIGABRT instead of our exit code; temporalio/sdk-python#300), and the
    exit code is a promise to scripts. Everything the command wrote is flushed first."""
    import os

    code: int = 0
    try:
        build_app(_named(sys.argv[1:]))()
    except SystemExit as done:
        if isinstance(done.code, str):
            print(done.code, file=sys.stderr)
            code = 1
        else:
            code = done.code or 0
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
