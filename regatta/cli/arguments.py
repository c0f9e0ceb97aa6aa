"""Reading what an operator typed: choices (typer refuses anything else with exit code 2), label
selectors, durations and times.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer

from regatta.models import ClusterSelector
from regatta.rules import selectors
from regatta.temporal.outcomes import OperationRefused as Refused


# Choices as enums: typer refuses anything else itself, with a usage error and exit code 2.
class Output(StrEnum):
    table = "table"
    json = "json"


OutputOption = Annotated[Output, typer.Option(help="table for people, json for scripts")]


class ListOutput(StrEnum):
    """How a list prints, as kubectl's -o: a table that fits the terminal (its first column never cut), every column,
    JSON, YAML, or one name a line."""

    table = "table"
    wide = "wide"
    json = "json"
    yaml = "yaml"
    name = "name"


ListOutputOption = Annotated[ListOutput, typer.Option(
    "--output", "-o", help="table (fits the terminal; piped: every column, plain), wide (every column), json, yaml, or"
    " name (one a line)")]
OperationId = Annotated[str, typer.Argument(help="the operation's id, as `regatta op list` shows it (cluster-NAME, wave-NAME,"
                                                 " policy-BUNDLE)")]
ScheduleId = Annotated[str, typer.Argument(help="the schedule's id, as `regatta schedule list` shows it")]


class StrategyChoice(StrEnum):
    surge = "surge"
    blue_green = "blue_green"


class RoleChoice(StrEnum):
    viewer = "viewer"
    operator = "operator"
    approver = "approver"
    admin = "admin"


def parse_selector(text: str | None) -> ClusterSelector:
    """--selector as kubectl's -l takes it: `env=prod,team in (payments,ledger),!pci,tier!=3`."""
    if not text:
        return ClusterSelector()
    try:
        return selectors.parse_label_selector(text)
    except ValueError as error:
        raise Refused(str(error)) from None


Accept = Annotated[list[str] | None, typer.Option(
    "--accept", help="go ahead although this blocking readiness finding stands: FINDING_ID=REASON, the id as `regatta"
                     " upgrade readiness` prints it (repeatable; audited)")]


def parse_accepted(pairs: list[str] | None) -> dict[str, str]:
    """--accept FINDING_ID=REASON, repeated: the finding ids an operator accepts and why."""
    accepted = {}
    for pair in pairs or []:
        finding, sep, reason = pair.partition("=")
        if not sep or not finding.strip() or not reason.strip():
            raise Refused(f"--accept {pair!r}: give FINDING_ID=REASON, e.g. --accept"
                          " 'removed_api:policy/v1beta1/PodSecurityPolicy=the chart is migrated in this window'")
        accepted[finding.strip()] = reason.strip()
    return accepted


DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def duration_seconds(text: str) -> float | None:
    """'90m', '2h', '3d' in seconds; None when it is not such a duration."""
    number, unit = text.strip()[:-1], text.strip()[-1:]
    if unit not in DURATION_UNITS or not number.replace(".", "", 1).isdigit():
        return None
    return float(number) * DURATION_UNITS[unit]


def parse_until(text: str, now):
    """--until as an ISO time with a zone (2026-12-01T08:00:00Z) or a duration from now (90m, 48h, 3d)."""
    from datetime import datetime, timedelta

    if (seconds := duration_seconds(text)) is not None:
        return now + timedelta(seconds=seconds)
    try:
        return datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise Refused(f"--until {text!r}: give a time with a zone (2026-12-01T08:00:00Z) or a duration (90m, 48h, 3d)") from None


Compress = Annotated[float, typer.Option(help="how many times faster than the real fleet the twin runs (60: an hour in a"
                                              " minute)")]
TwinFile = Annotated[str | None, typer.Option("--twin", help="a twin from `regatta fleet snapshot`; without it the"
                                                             " clusters are read now")]
