"""The catalog of operations walked: every kind it lists is registered with the worker under its name, takes the input
the catalog says (the Temporal UI's example included), answers its progress query with the catalog's model and each
control as an Update; the API starts and steers what the catalog says it does, the CLI has the commands it names, and
`regatta op status` renders every kind's progress by its kind (not by which keys it has) with its condition."""

from __future__ import annotations

import importlib
import json
import typing
from datetime import UTC, datetime
from typing import Any, get_args

import pytest
import typer
from rich.console import Console
from temporalio.workflow import _Definition

from regatta.api.operations import CONTROL_OUTCOME, Kind, Steer
from regatta.cli import app
from regatta.cli.render import HEADLINES, render_status
from regatta.models.operations import (
    ENDED_PHASES,
    Condition,
    Control,
    OperationStatus,
    WorkflowName,
    condition_of,
    ended,
)
from regatta.rules import operation_catalog
from regatta.rules.operation_catalog import CATALOG, CONTROL_COMMANDS, CONTROL_ROUTES, OperationKind
from workers.main import WORKFLOWS

DEFINITIONS = {_Definition.from_class(cls).name: (cls, _Definition.from_class(cls)) for cls in WORKFLOWS}


def test_every_workflow_name_has_one_entry_and_every_entry_is_registered_under_it():
    assert sorted(entry.workflow for entry in CATALOG) == sorted(WorkflowName)
    assert len({entry.kind for entry in CATALOG}) == len(CATALOG)
    assert set(DEFINITIONS) == set(WorkflowName), "the worker registers exactly the catalog's workflows"


@pytest.mark.parametrize("entry", CATALOG, ids=lambda e: e.kind)
def test_each_workflow_takes_its_input_answers_its_progress_and_its_controls(entry: OperationKind):
    cls, definition = DEFINITIONS[entry.workflow]
    hints = typing.get_type_hints(cls.run)
    taken = next(t for t in get_args(hints["input"]) if t is not dict)  # the model, or its raw JSON (a dict)
    # the input as the catalog has it, or the run's own subclass of it (a rollout takes the bundle and what it carries)
    assert issubclass(taken, entry.input), (entry.kind, taken)
    assert typing.get_type_hints(cls.run)["return"] is entry.result
    example = importlib.import_module(cls.__module__).EXAMPLE  # what the Temporal UI shows as its input
    entry.input.model_validate_json(example)
    assert typing.get_type_hints(definition.queries["progress"].fn)["return"] is entry.progress
    for control in entry.controls:
        assert control in definition.updates, f"{entry.workflow} has no Update {control}"


def test_the_api_starts_and_steers_what_the_catalog_says():
    assert set(get_args(Kind)) == set(operation_catalog.api_kinds())
    routed = {c for c, route in CONTROL_ROUTES.items() if route.startswith("/v1/operations/")}
    assert set(get_args(Steer)) == routed
    assert set(CONTROL_OUTCOME) == routed
    assert set(CONTROL_ROUTES) == set(Control) == set(CONTROL_COMMANDS)
    for entry in CATALOG:
        assert entry.route in ("", "/v1/operations", "/v1/access")


def _command(words: str) -> Any:
    command: Any = typer.main.get_command(app)
    for word in words.split():
        if word not in (getattr(command, "commands", None) or {}):
            return None
        command = command.commands[word]
    return command


@pytest.mark.parametrize("entry", [e for e in CATALOG if e.starts], ids=lambda e: e.kind)
def test_the_cli_has_the_command_that_starts_each_kind(entry: OperationKind):
    assert _command(entry.starts) is not None, f"regatta {entry.starts}"


def test_the_cli_has_the_command_that_sends_each_control():
    for control, words in CONTROL_COMMANDS.items():
        assert _command(words) is not None, f"regatta {words} ({control})"


def _example_progress(entry: OperationKind) -> Any:
    required: dict[str, Any] = {}
    for name, field in entry.progress.model_fields.items():
        if field.is_required():
            options = get_args(field.annotation)
            required[name] = options[0] if options else f"example-{name}"
    return entry.progress.model_validate(required)


@pytest.mark.parametrize("entry", CATALOG, ids=lambda e: e.kind)
def test_op_status_renders_every_kind_by_its_kind_with_its_condition(entry: OperationKind):
    progress = _example_progress(entry)
    paused = progress.model_copy(update={"paused": True, "pause_reason": "lunch"}) if "paused" in entry.progress.model_fields else progress
    console = Console(record=True, width=300)
    render_status({"operation_id": "op-1", "workflow_type": str(entry.workflow), "status": "RUNNING", "outcome": None,
                   "progress": paused.model_dump(mode="json"), "condition": paused.condition.model_dump()}, console)
    shown = console.export_text()
    assert entry.kind in HEADLINES or "cluster example-cluster" in shown, shown
    assert "None" not in shown, shown
    expected = "condition paused (Paused)" if paused is not progress else f"condition {progress.condition.state}"
    assert expected in shown, shown
    if entry.kind in ("wave", "policy"):  # its stages' table, drawn by kind
        assert "STAGE" in shown and "APPROVED BY" in shown, shown


@pytest.mark.parametrize("entry", CATALOG, ids=lambda e: e.kind)
def test_a_clients_status_reads_back_typed_with_its_kinds_progress(entry: OperationKind):
    """What the API answers (its times written as str() writes them) read by a client into an OperationStatus, and its
    progress into the kind's model; a key a newer release adds is read past."""
    progress = _example_progress(entry)
    answered = json.loads(json.dumps({
        "operation_id": "op-1", "run_id": "r1", "workflow_type": str(entry.workflow), "status": "COMPLETED",
        "started": datetime(2026, 12, 8, 1, 0, tzinfo=UTC), "closed": datetime(2026, 12, 8, 1, 5, tzinfo=UTC),
        "cluster": None, "environment": "prod", "progress": progress.model_dump(mode="json"), "failure": None,
        "outcome": "succeeded", "succeeded": True, "condition": progress.condition.model_dump(), "added_later": 1,
    }, default=str))
    status = OperationStatus.model_validate(answered)
    assert status.closed is not None and status.started is not None and (status.closed - status.started).seconds == 300
    typed = operation_catalog.progress_of(status)
    assert type(typed) is entry.progress and typed.condition == progress.condition
    assert operation_catalog.progress_of(status.model_copy(update={"progress": None})) is None
    newer = OperationStatus.model_validate({**answered, "condition": {**answered["condition"], "state": "hibernating",
                                                                       "since": "later"}})
    assert newer.condition is not None and newer.condition.state == "hibernating"


def test_a_progress_answer_reads_back_with_its_condition_computed_again():
    entry = operation_catalog.by_kind("wave")
    answered = _example_progress(entry).model_copy(update={"phase": "halted", "halted_reason": "failure budget spent"})
    dumped = answered.model_dump(mode="json")
    assert dumped["condition"] == {"state": "halted", "reason": "Halted", "message": "failure budget spent", "ended": True}
    dumped["condition"] = {"state": "running", "reason": "Stale", "message": "", "ended": False}  # what it said before
    typed = operation_catalog.typed_progress("PatchWave", dumped)
    assert typed is not None and typed.condition.reason == "Halted"
    assert operation_catalog.typed_progress("NoSuchWorkflow", dumped) is None
    assert operation_catalog.typed_progress("PatchWave", {"phase": "not a phase"}) is None


@pytest.mark.parametrize(("fields", "state", "reason"), [
    ({"phase": "awaiting_approval", "step": "waiting for a second person"}, "waiting", "AwaitingApproval"),
    ({"phase": "node_pools", "paused": True, "pause_reason": "lunch"}, "paused", "Paused"),
    ({"phase": "node_pools", "paused": True, "abort_requested": True}, "running", "AbortRequested"),
    ({"phase": "rolled_back"}, "succeeded", "RolledBack"),
    ({"phase": "refused", "message": "nobody approved it"}, "failed", "Refused"),
    ({"phase": "granted"}, "running", "Granted"),
    ({"phase": "waiting_window"}, "waiting", "WaitingWindow"),
])
def test_a_condition_is_read_from_the_fields_every_progress_names_alike(fields, state, reason):
    condition = condition_of(fields)
    assert (condition.state, condition.reason, condition.ended) == (state, reason, ended(fields["phase"]))


def test_ended_is_one_set_and_no_workflow_uses_an_ending_as_a_step():
    for entry in CATALOG:
        phases = set(get_args(entry.progress.model_fields["phase"].annotation))
        assert phases, entry.kind
        assert phases & ENDED_PHASES, f"{entry.kind} never ends"
        assert phases - ENDED_PHASES, f"{entry.kind} never runs"


def test_a_run_temporal_ended_says_so_whatever_its_progress_last_said():
    from regatta.rules.outcomes import condition_of_run

    running = Condition(state="running", reason="NodePools", message="draining", ended=False)
    assert condition_of_run("RUNNING", running, None) == running
    terminated = condition_of_run("TERMINATED", running, "terminated by ana")
    assert terminated is not None and (terminated.state, terminated.reason, terminated.ended) == ("failed", "Terminated", True)
    canceled = condition_of_run("CANCELED", None, None)
    assert canceled is not None and canceled.state == "aborted"
