"""An ended run's progress, kept in its memo as it ends.

A status read (`regatta op status`, `GET /v1/operations/{id}`) of a run that has ended otherwise
asks its `progress` query, which a worker answers only by replaying the whole history: a tenth of
a second on a busy worker, the slowest request the API serves. The memo comes with the run's
description instead. For operations on one cluster, whose progress is small (a wave's holds every
cluster it plans and stays with the query). Runs that began before this keep no memo.
"""

from __future__ import annotations

from temporalio import workflow

from workflows.pieces.patches import KEPT_IN_MEMO, patched

with workflow.unsafe.imports_passed_through():
    from regatta.models.operations import Reported
    from regatta.models.search_attributes import FINAL_PROGRESS_MEMO


def keep_final_progress(state: Reported) -> None:
    if patched(KEPT_IN_MEMO):
        workflow.upsert_memo({FINAL_PROGRESS_MEMO: state.held()})  # a reader computes its condition again
