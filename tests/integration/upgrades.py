"""Waiting on an upgrade's progress: what the upgrade-control, rollback and several-minors tests share."""

from __future__ import annotations

import asyncio

import pytest
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import ApplicationError

from regatta.models import ClusterUpgradeProgress


async def progress_of(handle) -> ClusterUpgradeProgress:
    return await handle.query("progress", result_type=ClusterUpgradeProgress)


async def wait_for(handle, predicate, *, timeout: float = 30) -> ClusterUpgradeProgress:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        progress = await progress_of(handle)
        if predicate(progress):
            return progress
        assert asyncio.get_running_loop().time() < deadline, f"gave up waiting; last progress: {progress}"
        await asyncio.sleep(0.05)


async def failure_of(handle) -> ApplicationError:
    with pytest.raises(WorkflowFailureError) as caught:
        await handle.result()
    cause = caught.value.cause
    assert isinstance(cause, ApplicationError)
    return cause
