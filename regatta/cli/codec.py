"""`regatta codec new-key`: payload encryption keys.
"""

from __future__ import annotations

from typing import Annotated

import typer

from regatta.cli.exits import EXIT_REFUSED
from regatta.cli.render import errors

codec_app = typer.Typer(no_args_is_help=True, help="Payload encryption keys (REGATTA_CODEC_KEYS, REGATTA_CODEC_KEY_FILE).")


@codec_app.command("new-key")
def codec_new_key(key_id: Annotated[str, typer.Option("--id", help="the key's id, e.g. 2026-12")]):
    """Print a new AES-256 key line (`ID BASE64KEY`) for REGATTA_CODEC_KEY_FILE; put it first to
    encrypt with it, and keep the old lines so older histories still decrypt."""
    from regatta.temporal.codec import new_key_line

    if not key_id.strip() or any(c.isspace() or c in ",:" for c in key_id):
        errors.print("[bold red]refused:[/] --id: give a key id without spaces, commas or colons, e.g. 2026-12")
        raise typer.Exit(EXIT_REFUSED)
    print(new_key_line(key_id))
