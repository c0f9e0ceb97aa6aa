"""`regatta access request|approve|revoke|kubeconfig|list`: a person's time-bound access to one cluster
(workflows/access_grant.py). The kubeconfig is handed out once, sealed to a key this command makes and keeps in
memory, and written to a file of mode 0600; its token stops working when the grant ends.
"""

from __future__ import annotations

from typing import Annotated

import typer

from regatta.cli.arguments import ListOutput, ListOutputOption
from regatta.cli.context import open_inventory
from regatta.cli.exits import Refused, run_command
from regatta.cli.render import console, errors, show_list
from regatta.settings import Settings

access_app = typer.Typer(no_args_is_help=True, help="Time-bound access to a cluster: ask for it, approve it, receive"
                                                   " its kubeconfig once, revoke it, list who had what.")
GRANT_ID = Annotated[str, typer.Argument(help="the grant's id, as `regatta access request` or `list` shows it")]


async def _refusal_kept(grant_id: str, person: str, action: str, ask: object) -> object:
    """Ask the grant; a refusal (a second hand-out, one's own approval) is written to the trail as an access record
    before it is said, as the API and the fleet view keep theirs."""
    import asyncio

    from regatta.models import OperationRecord
    from regatta.temporal.outcomes import OperationRefused

    try:
        return await ask  # type: ignore[misc]
    except OperationRefused as error:
        inventory = open_inventory()
        found = inventory.access_grants(grant_id=grant_id)
        await asyncio.to_thread(inventory.append_audit, OperationRecord(
            operation_id=grant_id, operation="access", cluster=found[0].cluster if found else "-", requested_by=person,
            action=f"{action} (CLI)", outcome="refused", detail=str(error)[:500]))
        raise


def _who(requested_by: str | None) -> str:
    import getpass

    return requested_by or getpass.getuser()


async def _hand_out(grant_id: str, person: str, output: str) -> None:
    import yaml

    from regatta.formats.kubeconfig import write_private
    from regatta.formats.sealed_box import SealError, new_recipient, open_sealed
    from regatta.models import SealedKubeconfig
    from regatta.temporal.operations import send_update

    private, public = new_recipient()
    answer = await _refusal_kept(grant_id, person, "hand out", send_update(
        Settings.from_env(), grant_id, "hand_out", {"requested_by": person, "recipient_key": public}))
    sealed = SealedKubeconfig.model_validate(answer)
    try:
        config = open_sealed(private, sealed.ephemeral_key, sealed.nonce, sealed.ciphertext)
    except SealError as error:
        raise Refused(str(error)) from None
    import json

    write_private(output, yaml.safe_dump(json.loads(config), sort_keys=False))
    errors.print(f"wrote {output} (handed out once; its token ends {sealed.expires_at:%Y-%m-%d %H:%M:%S} UTC):"
                 f" kubectl --kubeconfig {output} get pods -A")


@access_app.command("request")
def access_request(
    cluster: Annotated[str, typer.Argument(help="cluster name")],
    role: Annotated[str, typer.Option(help="the cluster's ClusterRole to bind: view, edit or admin")] = "view",
    duration: Annotated[str, typer.Option("--for", help="how long, once granted: 2h, 90m, 1h30m (30 s to 24 h)")] = "1h",
    reason: Annotated[str, typer.Option(help="why (an incident, a change): shown to the approver and kept")] = "",
    ticket: Annotated[str | None, typer.Option(help="change or incident ticket")] = None,
    requested_by: Annotated[str | None, typer.Option(help="who asks (default: $USER)")] = None,
    output: Annotated[str | None, typer.Option(help="once granted, write its kubeconfig to this file (mode 0600)")] = None,
    wait: Annotated[float, typer.Option(help="seconds to wait for the grant (and its approval) before returning")] = 30,
):
    """Ask for ROLE on CLUSTER for a while. Production (and admin anywhere) waits for a second person's
    `regatta access approve`; once granted, `regatta access kubeconfig ID --output FILE` hands out the kubeconfig
    (once), or --output here does."""
    import asyncio
    import time

    from regatta.models import AccessGrantInput
    from regatta.rules import access_grants
    from regatta.temporal.operations import query, start

    async def body():
        if not reason.strip():
            raise Refused("say why with --reason (an incident, a change): the approver reads it and the trail keeps it")
        if role not in ("view", "edit", "admin"):
            raise Refused(f"--role {role}: choose view, edit or admin (the cluster's default ClusterRoles)")
        try:
            seconds = access_grants.duration_seconds(duration)
        except ValueError as error:
            raise Refused(f"--for: {error}") from None
        record = open_inventory().get_cluster(cluster)
        person = _who(requested_by)
        request = AccessGrantInput(cluster=cluster, role=role, duration_seconds=seconds, reason=reason, ticket=ticket,
                                   requested_by=person)
        handle = await start(Settings.from_env(), request, cluster=record)
        grant_id = handle.id
        console.print(f"grant {grant_id}: {role} on {cluster} for {access_grants.human(seconds)}, asked by {person}")
        deadline = time.monotonic() + wait
        while True:
            progress = await query(Settings.from_env(), grant_id, "progress")
            phase = progress.get("phase")
            if phase == "granted":
                console.print(f"granted until {progress.get('expires_at')} UTC")
                if output:
                    await _hand_out(grant_id, person, output)
                else:
                    console.print(f"receive its kubeconfig (once): regatta access kubeconfig {grant_id} --output FILE")
                return
            if phase in ("refused", "failed", "revoked", "expired"):
                raise Refused(f"grant {grant_id} is {phase}: {progress.get('message') or progress.get('step')}")
            if phase == "awaiting_approval" and time.monotonic() >= deadline:
                console.print(f"it waits for a second person: regatta access approve {grant_id}")
                return
            if time.monotonic() >= deadline:
                console.print(f"still {phase}: regatta op status {grant_id}")
                return
            await asyncio.sleep(0.5)

    run_command(body())


@access_app.command("approve")
def access_approve(grant_id: GRANT_ID, approver: Annotated[str | None, typer.Option(help="who approves (default: $USER)")] = None,
                   comment: Annotated[str, typer.Option(help="kept in the trail")] = ""):
    """Approve a grant someone else asked for (four eyes: never your own)."""
    from regatta.temporal.operations import send_update

    async def body():
        await _refusal_kept(grant_id, _who(approver), "approve", send_update(
            Settings.from_env(), grant_id, "approve", {"approver": _who(approver), "comment": comment}))
        console.print(f"approved {grant_id}")

    run_command(body())


@access_app.command("revoke")
def access_revoke(grant_id: GRANT_ID, reason: Annotated[str, typer.Option(help="why, kept in the trail")] = "",
                  requested_by: Annotated[str | None, typer.Option(help="who revokes (default: $USER)")] = None):
    """End a grant now: its binding and service account are deleted and its kubeconfig stops working."""
    import asyncio

    from regatta.temporal.operations import query, send_update

    async def body():
        await send_update(Settings.from_env(), grant_id, "revoke", {"requested_by": _who(requested_by), "reason": reason})
        for _ in range(120):
            progress = await query(Settings.from_env(), grant_id, "progress")
            if progress.get("phase") in ("revoked", "expired", "refused", "failed"):
                console.print(f"{grant_id}: {progress.get('phase')} ({progress.get('step')})")
                return
            await asyncio.sleep(0.5)
        console.print(f"revocation asked; regatta op status {grant_id} follows it")

    run_command(body())


@access_app.command("kubeconfig")
def access_kubeconfig(grant_id: GRANT_ID,
                      output: Annotated[str, typer.Option(help="the file to write (mode 0600)")],
                      requested_by: Annotated[str | None, typer.Option(help="who receives it: the requester"
                                                                                " (default: $USER)")] = None):
    """The grant's kubeconfig, handed out once to the person who asked, sealed to a key this command holds."""

    async def body():
        await _hand_out(grant_id, _who(requested_by), output)

    run_command(body())


@access_app.command("list")
def access_list(cluster: Annotated[str | None, typer.Option(help="only this cluster's grants")] = None,
                person: Annotated[str | None, typer.Option(help="only this person's grants")] = None,
                at: Annotated[str | None, typer.Option(help="only the grants whose access was on the cluster at this"
                                                            " moment (ISO 8601, UTC unless it says: 2026-12-01T14:00)")] = None,
                output: ListOutputOption = ListOutput.table):
    """Live and past grants, newest first: who had what on which cluster, when, and who approved it. A grant whose
    time is up but whose access Regatta has not yet taken back (its workers were down) is `overdue`. With --at:
    who could reach the cluster at that moment."""
    from datetime import UTC, datetime

    from regatta.rules import access_grants

    def body():
        grants = open_inventory().access_grants(cluster=cluster, person=person)
        now = datetime.now(UTC)
        if at is not None:
            try:
                moment = datetime.fromisoformat(at)
            except ValueError:
                raise Refused(f"--at {at!r}: give a moment as 2026-12-01T14:00 (UTC) or 2026-12-01T15:00+01:00") from None
            moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
            grants = [g for g in grants if access_grants.held_at(granted_at=g.granted_at, revoked_at=g.revoked_at,
                                                                  moment=moment)]
        shown = [g.model_copy(update={"phase": access_grants.shown_state(phase=g.phase, expires_at=g.expires_at, now=now)})
                 for g in grants]

        def when(moment) -> str:
            return f"{moment:%Y-%m-%d %H:%M}" if moment else ""

        show_list(shown, output, title=f"{len(shown)} access grants",
                  columns=("GRANT", "CLUSTER", "PERSON", "ROLE", "STATE", "APPROVED BY", "GRANTED", "ENDS", "ENDED",
                           "REASON"),
                  row=lambda g: (g.grant_id, g.cluster, g.person, g.role, g.phase, g.approved_by or "",
                                 when(g.granted_at), when(g.expires_at), when(g.revoked_at), g.reason),
                  name=lambda g: g.grant_id, colours=lambda g: {4: "red"} if g.phase == "overdue" else {})

    run_command(body)
