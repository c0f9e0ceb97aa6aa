"""DESIGN rule 1, checked over what the suite actually did: no credential ever enters workflow
history. The `temporal` fixture (tests/conftest.py) searches every history on its server when its
session ends, in every process of a parallel run; this test does the same at once for whatever
the server holds when it runs (named test_zz_ so that, in one process, it runs after the rest),
and proves the search finds a credential that is there.
"""

from __future__ import annotations

import asyncio

from tests.conftest import LEAK_PROBE, credentials_in_histories


async def test_no_history_on_the_server_holds_a_credential(client, simulator):
    assert await credentials_in_histories(client, simulator) == []


async def test_the_search_finds_a_credential_that_is_there(client, simulator, task_queue):
    from temporalio.client import WorkflowFailureError

    handle = await client.start_workflow("NoSuchWorkflowType", {"token": simulator.world.api_token},
                                         id=f"{LEAK_PROBE}{task_queue}", task_queue=task_queue)
    try:
        for _ in range(40):  # the server's list of workflows catches up with a new one in a moment
            leaks = await credentials_in_histories(client, simulator, probes=True)
            if any(f"{LEAK_PROBE}{task_queue}" in leak for leak in leaks):
                break
            await asyncio.sleep(0.25)
        assert any(f"{LEAK_PROBE}{task_queue}" in leak and "API token" in leak for leak in leaks), leaks
    finally:
        await handle.terminate("the probe has been found")
        try:
            await handle.result()
        except WorkflowFailureError:
            pass
