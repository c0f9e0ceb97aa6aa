"""`--help` helps: every command says what it does, every option and argument what it takes, and a flag shows no
type (typer 0.29 printed `<bool>` beside --wait and --help)."""

from __future__ import annotations

import os
import subprocess
import sys

import typer.main

from regatta.cli import app


def commands(command, path=()):
    if hasattr(command, "commands"):
        for name, sub in command.commands.items():
            yield from commands(sub, (*path, name))
    else:
        yield " ".join(path), command


def test_every_command_option_and_argument_has_help():
    found = list(commands(typer.main.get_command(app)))
    assert len(found) > 50
    assert [name for name, command in found if not (command.help or "").strip()] == []
    assert [f"{name} {param.opts[0] if param.opts else param.name}" for name, command in found for param in command.params
            if param.name != "help" and not (getattr(param, "help", None) or "").strip()] == []


def test_a_flag_shows_no_type_and_the_version_is_printed():
    shown = subprocess.run([sys.executable, "-m", "regatta.cli", "upgrade", "start", "--help"], capture_output=True,
                           text=True, timeout=60, env={**os.environ, "COLUMNS": "160"})
    assert shown.returncode == 0 and "--wait" in shown.stdout and "<str>" in shown.stdout
    assert "<bool>" not in shown.stdout, shown.stdout
    version = subprocess.run([sys.executable, "-m", "regatta.cli", "--version"], capture_output=True, text=True, timeout=60)
    assert version.returncode == 0 and version.stdout.startswith("regatta ")
