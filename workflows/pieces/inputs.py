"""Starting a runbook: reading its plain-JSON input without ever getting stuck on one that does not
fit, refusing a start under the wrong workflow id (the id is the cluster's lock), and the search
attributes the Temporal UI lists operations by."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from pydantic import BaseModel, ValidationError
from temporalio import workflow
from temporalio.exceptions import ApplicationError

from workflows.pieces.patches import TAGS_SET_AT_START, patched

if TYPE_CHECKING:
    from workflows.pieces.trail import Trail

with workflow.unsafe.imports_passed_through():
    from regatta.models import ErrorType
    from regatta.models.search_attributes import operation_tags
    from regatta.rules import operation_ids

InputModel = TypeVar("InputModel", bound=BaseModel)


def parse_input(model: type[InputModel], raw: InputModel | dict[str, Any], example: str) -> tuple[InputModel, str | None]:
    """The input as its model, or a stand-in built without validation and the reason it does not
    fit, which the workflow raises as a non-retryable InvalidInput. (An input the data converter
    cannot decode would instead fail workflow tasks forever and leave the workflow Running.)"""
    if isinstance(raw, model):
        return raw, None
    try:
        return model.model_validate(raw), None
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'input'}: {e['msg']}" for e in error.errors())
        # Required fields keep what was sent, as text (enough to name the cluster in progress);
        # optional ones take their defaults, so the stand-in always fits the state model.
        sent = raw if isinstance(raw, dict) else {}
        values: dict[str, Any] = {
            name: str(sent.get(name, "?")) if field.is_required() else field.get_default(call_default_factory=True)
            for name, field in model.model_fields.items()
        }
        stand_in = model.model_construct(None, **values)
        return stand_in, f"the input is not a valid {workflow.info().workflow_type} request ({problems}). Example: {example}"


def refuse_a_bad_input(error: str | None) -> None:
    if error:
        raise ApplicationError(error, type=ErrorType.INVALID_INPUT, non_retryable=True)


def refuse_a_wrong_operation_id(*, operation: str, cluster: str) -> None:
    """Refuse a start under any workflow id but cluster-<name>: that id is the lock that keeps two
    operations off one cluster."""
    expected, actual = operation_ids.operation_id(cluster), workflow.info().workflow_id
    if actual != expected:
        raise ApplicationError(
            f"start this {operation} with workflow id {expected!r}, not {actual!r}: that id is what keeps two"
            " operations off one cluster", type=ErrorType.WRONG_OPERATION_ID, non_retryable=True)


def tag(*, operation: str, cluster: str | None = None, environment: str | None = None, ticket: str | None = None) -> None:
    """Search attributes, so the Temporal UI finds this run by cluster, environment, type and ticket.
    Those its starter set already (the CLI, the API and a wave set them) are not written again: each
    upsert is an event and a visibility write."""
    wanted = list(operation_tags(operation=operation, cluster=cluster, environment=environment, ticket=ticket))
    if patched(TAGS_SET_AT_START):
        present = workflow.info().typed_search_attributes
        wanted = [pair for pair in wanted if present.get(pair.key) != pair.value]
    if wanted:
        workflow.upsert_search_attributes([pair.key.value_set(pair.value) for pair in wanted])


class Started(Protocol):
    operation_id: str


def check_start(*, trail: Trail, state: Started, input_error: str | None, cluster: str | None) -> None:
    """What every runbook checks first, failing the run with the step that refused: the input fits
    its model, and (for an operation on one cluster) the workflow id is that cluster's lock."""
    state.operation_id = workflow.info().workflow_id
    try:
        refuse_a_bad_input(input_error)
    except ApplicationError:
        trail.step("failed", "reading the input")
        raise
    if cluster is None:
        return
    try:
        refuse_a_wrong_operation_id(operation=trail.operation, cluster=cluster)
    except ApplicationError:
        trail.step("failed", "checking the operation id")
        raise
