"""`regatta token create|revoke|list`: API tokens.
"""

from __future__ import annotations

from typing import Annotated

import typer

from regatta.cli.arguments import ListOutput, ListOutputOption, RoleChoice
from regatta.cli.context import open_inventory
from regatta.cli.exits import run_command
from regatta.cli.render import console, errors, show_list

token_app = typer.Typer(no_args_is_help=True, help="API tokens: who may do what over the HTTP API.")


def _token_audit(verb: str, name: str, detail: str) -> None:
    import getpass

    from regatta.models import OperationRecord

    open_inventory().append_audit(OperationRecord(operation_id=f"token-{name}", operation="ApiToken", cluster="-",
                                              requested_by=getpass.getuser(), action=f"token {verb}",
                                              outcome="succeeded", detail=detail))


@token_app.command("create")
def token_create(
    name: Annotated[str, typer.Option(help="who or what uses it, e.g. servicenow")],
    role: Annotated[RoleChoice, typer.Option(help="viewer, operator, approver or admin")],
    env: Annotated[list[str], typer.Option(help="an environment it may act on; repeat, or '*' for every one")],
    new_environment: Annotated[bool, typer.Option("--new-environment", help="an --env no cluster has yet is meant"
                                                  " (refused otherwise, as a typo would see nothing)")] = False,
):
    """Make an API token and print it once: only its hash is kept."""
    from regatta.api.tokens import create_token
    from regatta.rules import suggestions
    from regatta.temporal.outcomes import OperationRefused

    def body():
        environments = sorted({e.strip() for value in env for e in value.split(",")})
        inventory = open_inventory()
        known = sorted({c.environment for c in inventory.list_clusters()})
        unknown = [e for e in environments if e and e != "*" and e not in known]
        if unknown and known and not new_environment:
            raise OperationRefused("; ".join(
                f"no cluster is in environment {e!r}{suggestions.known_names_hint(e, known, what='environment')}"
                for e in unknown) + ". A token for it would see nothing: give an environment the inventory has, or"
                " --new-environment if clusters in it are yet to come")
        token, secret = create_token(inventory, name=name, role=role.value, environments=environments)
        _token_audit("create", token.name, f"role {token.role}, environments {', '.join(token.environments)}")
        errors.print(f"token {token.name}: {token.role} in {', '.join(token.environments)}. It is shown once; keep it:")
        print(secret)

    run_command(body)


@token_app.command("revoke")
def token_revoke(name: Annotated[str, typer.Argument(help="the token's name")]):
    """Revoke a token: every call with it is refused from now on, and its fleet-view sessions end. A name with no
    token but fleet-view sessions (a person signed in through the identity provider) has those sessions ended."""

    def body():
        from regatta.inventory import TokenError

        inventory = open_inventory()
        try:
            token = inventory.revoke_token(name)
        except TokenError:
            ended = inventory.end_sessions_of(name)
            if not ended:
                raise
            _token_audit("end sessions", name, f"{ended} fleet-view sessions of {name} ended")
            console.print(f"no API token named {name}; {ended} fleet-view session(s) of {name} ended (their identity"
                          " provider may sign them in again: remove them from the groups the sign-in file names)")
            return
        ended = inventory.end_sessions_of(token.name)
        _token_audit("revoke", token.name, f"revoked at {token.revoked_at:%Y-%m-%d %H:%M:%S} UTC; {ended} sessions ended")
        console.print(f"token {token.name} revoked" + (f"; {ended} fleet-view session(s) ended" if ended else ""))

    run_command(body)


@token_app.command("list")
def token_list(output: ListOutputOption = ListOutput.table):
    """Every token: its role, environments and whether it is revoked (never the token itself)."""

    def body():
        tokens = open_inventory().list_tokens()
        show_list(tokens, output, title=f"{len(tokens)} API tokens",
              columns=("NAME", "ROLE", "ENVIRONMENTS", "CREATED (UTC)", "REVOKED (UTC)"),
              row=lambda t: (t.name, t.role, ", ".join(t.environments), f"{t.created_at:%Y-%m-%d %H:%M}",
                             f"{t.revoked_at:%Y-%m-%d %H:%M}" if t.revoked_at else ""),
              name=lambda t: t.name)

    run_command(body)
