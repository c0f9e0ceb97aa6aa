"""DESIGN rule 1, checked over what the suite actually did: no credential ever enters workflow
history. Every history on the session's Temporal server (every upgrade, wave, provision,
decommission, failover, sweep and schedule the tests before this one ran) is fetched and
searched for the simulator's API token, which every activity that touched a cluster used, and
for the webhook secret the callback tests signed with.

Named test_zz_ so it runs after the other integration tests (and the e2e tests, which run
first); run alone, it checks whatever histories the server holds.
"""

from __future__ import annotations

from tests.integration.test_callbacks import SECRET as WEBHOOK_SECRET


async def test_no_history_on_the_server_holds_a_credential(client, simulator):
    secrets = {"the simulator's API token": simulator.world.api_token, "the webhook secret": WEBHOOK_SECRET}
    assert all(len(value) >= 16 for value in secrets.values())
    scanned, leaks = 0, []
    async for execution in client.list_workflows():
        history = await client.get_workflow_handle(execution.id, run_id=execution.run_id).fetch_history()
        # The raw protobuf: payload data as the data converter wrote it (the JSON form base64s it).
        raw = b"".join(event.SerializeToString() for event in history.events)
        leaks += [f"{execution.workflow_type} {execution.id}: {what}" for what, value in secrets.items()
                  if value.encode() in raw]
        scanned += 1
    assert scanned > 0, "no history to scan: run this after the rest of the suite"
    assert leaks == [], leaks
