"""How an operation ended: one judgement for every answer that reports it (the CLI's exit codes, `op status`,
`--wait`, a start that ends at once, the API, the fleet view), so an operation that failed, halted, was aborted
or rolled back never reads as done anywhere.

Temporal's status says only whether the workflow's code ran to its end: a rollout that halted on a conflict, or
an upgrade an operator aborted, returns normally and is COMPLETED. What it came to is the `outcome` of its
result (the same word its last progress carries as its phase).
"""

from __future__ import annotations

from typing import Literal

from regatta.models.operations import Condition, State, reason_word

# The outcomes that are the operation doing what was asked: a DR hold released, a placement with nothing to move.
GOOD = frozenset({"succeeded", "released", "nothing_to_move"})
STILL_RUNNING = frozenset({"RUNNING", "CONTINUED_AS_NEW"})

Verdict = Literal["running", "succeeded", "unsuccessful", "unknown"]


def outcome_of_result(result: object) -> str:
    """A completed run's outcome as its result says it: the `outcome` it carries; a result that names none (a fleet
    sweep's counts, a workflow returning nothing) ran to its end and claims nothing else: succeeded."""
    said = result.get("outcome") if isinstance(result, dict) else None
    return said if isinstance(said, str) else "succeeded"


def outcome_of(status: str, result_outcome: str | None) -> str | None:
    """What an operation came to, in one word: its result's outcome when it completed, Temporal's status (lower
    case: failed, terminated, canceled, timed_out) when it did not; None while it runs or when it completed and
    its result could not be read."""
    if status in STILL_RUNNING:
        return None
    if status == "COMPLETED":
        return result_outcome
    return status.lower()


def verdict(status: str, outcome: str | None) -> Verdict:
    """running, succeeded, unsuccessful (failed, halted, aborted, rolled back, terminated, ...) or unknown (it
    completed and nothing says how)."""
    if status in STILL_RUNNING:
        return "running"
    if outcome is None:
        return "unknown"
    return "succeeded" if outcome in GOOD else "unsuccessful"


def succeeded(status: str, outcome: str | None) -> bool | None:
    """True or False once it has ended and how is known; None while it runs or when not."""
    return {"succeeded": True, "unsuccessful": False}.get(verdict(status, outcome))


def condition_of_run(status: str, reported: Condition | None, failure: str | None) -> Condition | None:
    """An operation's condition: what its progress reports, unless Temporal ended the run before the progress could
    say so (a failure, a termination, a timeout, a cancellation): then that, with why."""
    if status in STILL_RUNNING or status == "COMPLETED" or (reported is not None and reported.ended):
        return reported
    state: State = "aborted" if status == "CANCELED" else "failed"
    return Condition(state=state, reason=reason_word(status.lower()), message=failure or (reported.message if reported
                     else ""), ended=True)
