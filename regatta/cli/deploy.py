"""`regatta deploy secrets DIR`: the set-up step of a production deployment (docs/production.md).
"""

from __future__ import annotations

from typing import Annotated

import typer

from regatta.cli.exits import run_command
from regatta.cli.render import console

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
