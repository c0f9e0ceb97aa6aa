"""An ended run's progress, kept in its memo as it ends.

A status read (`regatta op status`, `GET /v1/operations/{id}`) of a run that has ended otherwise
asks its `progress` query, which a worker answers only by replaying the whole history: a tenth of
a second on a busy worker, the slowest request the API serves. The memo comes with the run's
description instead. For operations on one cluster, whose progress is small (a wave's holds every
cluster it plans and stays with the query). Runs that began before this keep no memo.
"""

from __future__ import annotations

from pydantic import BaseModel
from temporalio import workflow

from workflows.pieces.patches import KEPT_IN_MEMO, patched

with workflow.unsafe.imports_passed_through():
    from regatta.models.search_attributes import FINAL_PROGRESS_MEMO


def keep_final_progress(state: BaseModel) -> None:
    if patched(KEPT_IN_MEMO):
        # The memo keeps the fields the run holds; a reader computes the condition again (regatta/models/operations.py).
        workflow.upsert_memo({FINAL_PROGRESS_MEMO: state.model_dump(mode="json", exclude={"condition"})})
