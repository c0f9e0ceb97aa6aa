"""How the CLI shows things: lists as tables or JSON, operations' status, wave plans and forecasts,
and progress bars while an operation runs. The only module of the CLI that knows rich's tables.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, Task, TaskID, TextColumn
from rich.text import Text

if TYPE_CHECKING:
    from temporalio.client import WorkflowHandle
from regatta.models import ClusterRecord, WaveForecast, WavePlan
from regatta.models.cost import ClusterCost
from regatta.models.readiness import ReadinessReport
from regatta.rules import cost, operation_catalog, outcomes
from regatta.temporal.outcomes import OperationFailed, cause_of

console = Console()


errors = Console(stderr=True)


def show_list(items: Sequence[Any], output: str, *, title: str, columns: tuple[str, ...], row: Callable[[Any], tuple],
              name: Callable[[Any], str], data: Callable[[Any], Any] | None = None,
              colours: Callable[[Any], dict[int, str]] | None = None) -> None:
    """A list as kubectl prints one (`-o table|wide|json|yaml|name`): JSON or YAML for scripts (`data` of each item,
    its model's JSON by default), one name a line, or plain columns nothing is cut from."""
    if output in ("json", "yaml"):
        found = [data(item) if data else item.model_dump(mode="json") for item in items]
        if output == "json":
            print(json.dumps(found, indent=2, default=str))
        else:
            import yaml

            print(yaml.safe_dump(json.loads(json.dumps(found, default=str)), sort_keys=False, allow_unicode=True), end="")
        return
    if output == "name":
        for item in items:
            print(name(item).translate(UNPRINTABLE))
        return
    print_columns(title, columns, [tuple(str(cell) for cell in row(item)) for item in items],
                  [colours(item) for item in items] if colours else None, fit=output == "table")


def minute(at) -> str:
    """A time as the hold commands print it: UTC, to the minute."""
    return f"{at.astimezone(UTC):%Y-%m-%d %H:%M}Z"


COLOURS = {"green": "\x1b[32m", "yellow": "\x1b[33m", "red": "\x1b[31m"}
# Cells carry text others wrote (a hold's reason, a cluster's labels, a cloud's error): a control
# character (a newline forging a row, an escape sequence writing to the terminal or its clipboard,
# a bidi override) is shown as its escape, never sent to the terminal.
UNPRINTABLE = {c: repr(chr(c))[1:-1] for c in [*range(0x20), *range(0x7f, 0xa0), *range(0x202a, 0x202f),
                                              *range(0x2066, 0x206a)]}


def print_columns(title: str, headers: tuple[str, ...], rows: Sequence[tuple[str, ...]],
                  colours: list[dict[int, str]] | None = None, *, fit: bool = False, out: Console | None = None) -> None:
    """A table as kubectl prints one: left-aligned columns as wide as their widest cell, three spaces
    apart, one line a row, nothing cut or wrapped (grep and awk read it as well as people do). A rich
    table measures and wraps every cell, 15 s for 10,000 clusters; this takes milliseconds. On a
    terminal the title comes first and `fit` drops the last columns (never the first) until the table
    fits, saying which; piped, the header and the rows alone go to stdout (the title to stderr) and
    every column is kept. `colours`: per row, column → green, yellow or red, on a terminal only. `out`: another
    console than the CLI's own (one that records, in a test)."""
    target = out or console
    rows = [tuple(cell.translate(UNPRINTABLE) for cell in row) for row in rows]
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(headers)]
    shown = len(headers)
    if fit and target.is_terminal:
        while shown > 1 and sum(widths[:shown]) + 3 * (shown - 1) > target.width:
            shown -= 1
        if shown < len(headers):
            title += f" ({', '.join(headers[shown:])} not shown: -o wide)"
    paint = target.is_terminal and not target.no_color
    lines = ["   ".join(h.ljust(w) for h, w in zip(headers[:shown], widths, strict=False)).rstrip()]
    for n, row in enumerate(rows):
        cells = [cell.ljust(width) for cell, width in zip(row[:shown], widths, strict=False)]
        if paint and colours:
            for column, colour in colours[n].items():
                if column < shown:
                    cells[column] = f"{COLOURS[colour]}{cells[column]}\x1b[0m"
        lines.append("   ".join(cells).rstrip())
    if target.is_terminal or (title and out is not None):  # a console of the caller's takes the title with the rows
        lines.insert(0, title)
    elif title:
        errors.file.write(title + "\n")
    if out is not None:  # a console of the caller's (one that records): through it, each line as it is
        for line in lines:
            out.print(line, markup=False, highlight=False, emoji=False, soft_wrap=True)
        return
    target.file.write("\n".join(lines) + "\n")
    target.file.flush()


def render_clusters(records: list[ClusterRecord], *, now: datetime | None, costs: dict[str, ClusterCost],
                    fit: bool = False) -> None:
    """`regatta clusters list`: one row a cluster, its hold read on the fleet's clock `now`, its
    estimated monthly cost and how much of its CPU the pods request."""
    currency = next(iter(costs.values())).currency if costs else "USD"
    total = sum(c.monthly for c in costs.values())
    headers = ("NAME", "PROVIDER", "REGION", "LABELS", "CONTROL PLANE", "NODE POOLS", "HEALTH", "PODS FREE/CAP",
               "CPU USED", f"{currency}/MONTH", "SWEPT", "HOLD")
    rows, colours = [], []
    for r in records:
        pools = ", ".join(f"{p.name}={p.version}×{p.node_count}" for p in r.node_pools)
        labels = ",".join(f"{k}={v}" for k, v in sorted(r.labels.items()))
        colour = "green" if r.health == "healthy" else "yellow" if r.health == "unknown" else "red"
        room = f"{r.pods_free}/{r.pods_capacity}" if r.pods_capacity is not None else "—"
        swept = f"{r.updated_at:%Y-%m-%d %H:%M}" if r.updated_at else "—"
        hold = r.held_at(now) if now else None
        held = f"until {minute(hold.until)}: {hold.reason}" if hold else ""
        cpu, _ = cost.utilization(r)
        used = f"{cpu:.0%}" if cpu is not None else "—"
        monthly = f"{costs[r.name].monthly:,.0f}" + ("*" if costs[r.name].unpriced else "") if r.name in costs else "—"
        rows.append((r.name, r.provider, r.region, labels, r.control_plane_version, pools, r.health, room, used, monthly,
                     swept, held))
        colours.append({6: colour, **({11: "yellow"} if hold else {})})
    print_columns(f"{counted(len(records), 'cluster')}, {total:,.0f} {currency} a month", headers, rows, colours, fit=fit)


def render_forecast(forecast: WaveForecast, console: Console, *, cluster: str | None = None, output: str = "table") -> None:
    """`regatta wave plan` and `regatta wave forecast`: each cluster's first touch and why then."""
    rows = forecast.clusters
    if cluster is not None:
        rows = [row for row in rows if row.cluster == cluster]
        if not rows:
            missing = {"cluster": cluster, "in_wave": False,
                       "because": f"{cluster} is not in this wave: the wave did not select it when it planned (a"
                                  " cluster that joined the fleet later, or one its selector does not take)"}
            print(json.dumps(missing, indent=2)) if output == "json" else console.print(missing["because"])
            return
    if output == "json":
        print(json.dumps(forecast.model_copy(update={"clusters": rows}).model_dump(mode="json"), indent=2))
        return
    console.print(f"[bold]{forecast.wave}[/], forecast at {forecast.forecast_at.astimezone(UTC):%Y-%m-%d %H:%M} UTC;"
                  f" assumes {'; '.join(forecast.assumes)}")
    lines = []
    for row in rows:
        when = f"{row.earliest_touch.astimezone(UTC):%a %Y-%m-%d %H:%M}" if row.earliest_touch else "—"
        done = f"{row.expected_done.astimezone(UTC):%a %Y-%m-%d %H:%M}" if row.expected_done else "—"
        lines.append((row.cluster, row.stage or "—", row.status, when, done, row.because))
    print_columns("forecast", ("CLUSTER", "STAGE", "STATUS", "FIRST TOUCH (UTC)", "EXPECTED DONE (UTC)", "BECAUSE"),
                  lines, fit=True, out=console)


def plan_readiness(report: ReadinessReport | None, accepted: Mapping[str, str]) -> str:
    """A cluster's readiness in a word and the ids that hold it out: what a wave would do with it."""
    if report is None:
        return "—"
    refused = [f.id for f in report.findings if f.severity == "blocking" and not f.can_accept]
    if refused:  # its upgrade refuses these itself (a budget, the cloud's insights, skew): a failure, not a hold-out
        return "would fail: " + ", ".join(refused)
    blocking = [f for f in report.findings if f.severity == "blocking" and f.id not in accepted]
    if blocking:
        return "held out: " + ", ".join(f.id for f in blocking)
    taken = [f.id for f in report.findings if f.severity == "blocking"]
    return "ready" + (f" (accepted: {', '.join(taken)})" if taken else "")


def upgrade_plan(*, cluster: str, control_plane: str, path: Sequence[str], pools: Sequence[str], strategy: str,
                 provider: str, soak_seconds: float, node_image: str | None) -> list[str]:
    """What `regatta upgrade start` will do, minor by minor, before it starts, and what could be taken back after
    (`--plan-only`)."""
    from regatta.rules.rollback import way_back

    if not path:
        return [f"{cluster}: the control plane stays on {control_plane}; node pools {', '.join(pools)} move by {strategy}"
                + (f" onto node image {node_image}" if node_image else "")]
    lines = [f"{cluster}: {control_plane} → {path[-1]} by {strategy}"
             + (f", {len(path)} minors, one at a time" if len(path) > 1 else "")]
    for number, minor in enumerate(path, 1):
        parts = ["readiness" + (" for the rest of the path" if len(path) > 1 else ""), f"control plane to {minor}"]
        parts += ["EKS managed add-ons to their defaults"] if provider == "eks" else []
        parts += [f"node pools {', '.join(pools)}" + (f" onto node image {node_image}" if node_image and minor == path[-1]
                                                      else ""), "a health gate after each"]
        soak = f"; then a soak of {soak_seconds:g}s" if number < len(path) and soak_seconds else ""
        lines.append(f"  {minor}: " + ", ".join(parts) + soak)
    return [*lines, f"  {way_back(provider)}"]


def render_plan(plan: WavePlan, console: Console, *, readiness: Mapping[str, ReadinessReport] | None = None,
                accepted: Mapping[str, str] | None = None) -> None:
    """Which clusters go in which stage and when, and (given) whether each is ready for the target:
    `regatta wave start --plan-only`."""
    total = sum(len(stage.clusters) for stage in plan.stages)
    images = f" (node images: {', '.join(f'{k} {v}' for k, v in sorted(plan.node_images.items()))})" if plan.node_images else ""
    console.print(f"[bold]{plan.wave}[/] to {plan.target_version}{images}: {counted(total, 'cluster')} in {counted(len(plan.stages), 'stage')},"
                  f" failure budget {plan.failure_budget} (planned {plan.planned_at:%Y-%m-%d %H:%M} UTC)")
    for stage in plan.stages:
        gate = ", after a second person's approval" if stage.approval_required else ""
        console.print(f"  stage {stage.name}: {counted(len(stage.clusters), 'cluster')}, {stage.concurrency} at once,"
                      f" soak {stage.soak_seconds:g}s{gate}", markup=False, highlight=False)
    rows = []
    for stage in plan.stages:  # the stage on every row: `grep CLUSTER` says which stage takes it
        if not stage.clusters:
            rows.append((stage.name, "—", "-", "-", "no cluster") + (("-",) if readiness else ()))
        for entry in stage.clusters:
            start = f"{entry.earliest_start.astimezone(UTC):%Y-%m-%d %H:%M}" if entry.earliest_start else "—"
            ready = (plan_readiness(readiness.get(entry.name), accepted or {}),) if readiness else ()
            rows.append((stage.name, entry.name, entry.status, start, entry.detail or "-", *ready))
    print_columns("plan", ("STAGE", "CLUSTER", "STATUS", "EARLIEST START (UTC)", "NOTE")
                  + (("READINESS",) if readiness else ()), rows, fit=True, out=console)
    for name in plan.unstaged:
        console.print(f"not in any stage (not touched): {name}: {plan.unstaged_reasons.get(name, '')}")


def _print_stage_table(headers: tuple[str, ...], rows: list[tuple[str, ...]], notes: list[str], progress: dict[str, Any],
                       console: Console) -> None:
    """A staged operation's stages, then its clusters worth a word (the first 20), then why it halted."""
    print_columns("stages", headers, rows, out=console)
    for note in notes[:20]:
        console.print(f"  {note}")
    if len(notes) > 20:
        console.print(f"  … and {len(notes) - 20} more (regatta op status --output json)")
    if progress.get("halted_reason"):
        console.print(f"  [red]halted:[/] {said(progress['halted_reason'])}")


def _render_wave(progress: dict[str, Any], console: Console) -> None:
    headers = ("STAGE", "STATUS", "DONE", "UPGRADING", "WAITING", "FAILED", "NOT READY", "ABORTED", "SKIPPED", "APPROVED BY")
    rows: list[tuple[str, ...]] = []
    notes = []
    for stage in progress["stages"]:
        count = {status: sum(1 for c in stage["clusters"] if c["status"] == status)
                 for status in ("succeeded", "at_target", "upgrading", "waiting_window", "held", "failed", "aborted", "skipped",
                                "not_ready")}
        rows.append((stage["name"], stage["status"], f"{count['succeeded'] + count['at_target']}/{len(stage['clusters'])}",
                     str(count["upgrading"]), str(count["waiting_window"] + count["held"]), str(count["failed"]),
                     str(count["not_ready"]), str(count["aborted"]), str(count["skipped"]), stage.get("approved_by") or "-"))
        notes += [f"{c['name']}: {c['status']} — {c['detail']}" for c in stage["clusters"]
                  if c["status"] in ("waiting_window", "held", "failed", "aborted", "skipped", "not_ready")]
    _print_stage_table(headers, rows, notes, progress, console)


def _render_rollout(progress: dict[str, Any], console: Console) -> None:
    headers = ("STAGE", "MODE", "STATUS", "APPLIED", "APPLYING", "FAILED", "SKIPPED", "VIOLATIONS", "APPROVED BY")
    rows: list[tuple[str, ...]] = []
    notes = []
    for stage in progress["stages"]:
        count = {status: sum(1 for c in stage["clusters"] if c["status"] == status)
                 for status in ("applied", "applying", "failed", "skipped", "aborted")}
        rows.append((stage["name"], stage.get("mode") or "-", stage["status"], f"{count['applied']}/{len(stage['clusters'])}",
                     str(count["applying"]), str(count["failed"]), str(count["skipped"] + count["aborted"]),
                     str(sum(c.get("violations", 0) for c in stage["clusters"])), stage.get("approved_by") or "-"))
        notes += [f"{c['name']}: {c['status']} — {c['detail']}" for c in stage["clusters"]
                  if c["status"] in ("failed", "skipped", "aborted")]
    _print_stage_table(headers, rows, notes, progress, console)


def counted(count: int, noun: str, plural: str | None = None) -> str:
    """'1 stage', '3 stages', '1 DR pair': a count with its noun in the right number."""
    return f"{count} {noun if count == 1 else plural or noun + 's'}"


def said(text: Any) -> str:
    """Text someone typed (a reason, a step that quotes one), printed as written: no Rich markup read into it and
    no control character sent to the terminal."""
    return escape(str(text).translate(UNPRINTABLE))


def _upgrade_headline(progress: dict[str, Any]) -> list[str]:
    onto = f" on node image {progress['target_node_image']}" if progress.get("target_node_image") else ""
    lines = [f"cluster {progress.get('cluster')} → {progress['target_version']}{onto} by {progress.get('strategy')}"]
    if progress.get("path"):
        lines.append("minors: " + " → ".join(f"{step['version']} ({step['status']})" for step in progress["path"]))
    return lines


# What each kind of operation is about, in a line or two above its phase (the catalog's kinds: a kind without one
# is about the cluster it names; a wave's and a rollout's tables say theirs below).
HEADLINES: dict[str, Callable[[dict[str, Any]], list[str]]] = {
    "upgrade": _upgrade_headline,
    "rollback": lambda p: [f"rollback of {p.get('cluster')}: {p.get('from_version') or '?'} → {p.get('to_version') or '?'}"
                           f" because {said(p.get('reason'))}"],
    "failover": lambda p: [f"service of {p.get('cluster')}: {p['source']} → {p['target']}{' (drill)' if p.get('drill') else ''}"],
    "wave": lambda p: [],
    "policy": lambda p: [],
    "drift": lambda p: [f"drift sweep: {p.get('swept', 0)} of {p.get('targets', 0)} clusters read, {p.get('drifted', 0)}"
                        f" drifted, {p.get('remediated', 0)} put back, {p.get('unreachable', 0)} unreachable"],
    "sweep": lambda p: [f"fleet sweep: {p.get('swept', 0)} of {p.get('total', 0)} clusters"],
    "move": lambda p: [f"application {p.get('app')}: {p.get('steps_done', 0)} of {p.get('steps', 0)} steps"],
    "access": lambda p: [f"{p.get('role')} on {p.get('cluster')} for {p.get('person')}"],
    "hold": lambda p: [f"cluster {p.get('cluster')} held by {p.get('held_by')} ({p.get('operation')})"],
}
HEADLINES["failback"] = HEADLINES["failover"]


def render_status(described: dict[str, Any], console: Console) -> None:
    """Where any operation stands: its kind from the catalog, then what its progress says it is doing, and its
    condition (state and reason, as machines read them)."""
    progress = described.get("progress") or {}
    came_to = outcomes.verdict(described["status"], described.get("outcome"))
    colour = {"succeeded": "green", "unsuccessful": "red", "unknown": "yellow"}.get(came_to)
    ended = f" → [{colour}]{described.get('outcome') or 'outcome unknown'}[/]" if colour else ""
    console.print(f"[bold]{described['operation_id']}[/] {described['workflow_type']}: {described['status']}{ended}")
    entry = operation_catalog.by_workflow(described.get("workflow_type"))
    kind = entry.kind if entry else ""
    if progress:
        for line in HEADLINES.get(kind, lambda p: [f"cluster {p.get('cluster')}"])(progress):
            console.print(f"  {line}")
        console.print(f"  phase {progress.get('phase')}: {said(progress.get('step'))}")
        if progress.get("waiting_for"):
            console.print(f"  [yellow]{said(progress['waiting_for'])}[/]")
        for flag, reason in (("paused", "pause_reason"), ("abort_requested", "abort_reason")):
            if progress.get(flag):
                console.print(f"  [yellow]{flag.replace('_', ' ')}[/] {said(progress.get(reason) or '')}")
        if escalation := progress.get("drain_escalation"):
            console.print(f"  [yellow]drain of {escalation['node']} blocked[/] since {escalation['blocked_since']}: step"
                          f" {escalation['step']} since {escalation['step_since']}; budgets {', '.join(escalation['budgets'])};"
                          f" pods {', '.join(escalation['pods'])}")
        for line in progress.get("health_checks") or []:
            console.print(f"  health check {line}")
        for line in progress.get("insights") or []:
            console.print(f"  [yellow]upgrade insight[/] {line}")
        for addon in progress.get("addons") or []:
            moved = f"{addon['from_version']} → {addon['to_version']}" if addon["status"] == "updated" else addon["from_version"]
            console.print(f"  add-on {addon['name']}: {moved} ({addon['status']})")
        if progress.get("rto_seconds") is not None:
            rpo = progress.get("rpo_seconds")
            console.print(f"  RTO {progress['rto_seconds']:.1f}s, RPO {f'{rpo:.0f}s' if rpo is not None else 'unknown'}")
        for key in ("control_plane", "approved_by", "backup", "fencing", "created", "restored", "scaled", "deleted",
                    "workloads"):
            if progress.get(key):
                value = progress[key]
                if isinstance(value, dict):  # a backup names itself; a plan reads as what → how many
                    value = value.get("name") or ", ".join(f"{k} → {v}" for k, v in value.items())
                console.print(f"  {key.replace('_', ' ')}: {', '.join(value) if isinstance(value, list) else value}")
        if condition := described.get("condition"):
            console.print(f"  condition {condition['state']} ({condition['reason']})")
        if kind == "policy":
            console.print(f"  bundle {progress['bundle']} revision {progress['revision']}: failure budget"
                          f" {progress['failure_budget']}, {progress['failed']} failed, {progress['applied_objects']}"
                          f" objects applied, {counted(len(progress.get('left_out') or {}), 'cluster')} left out")
            _render_rollout(progress, console)
        elif kind == "wave":
            images = progress.get("node_images") or {}
            onto = f" (node images: {', '.join(f'{k} {v}' for k, v in sorted(images.items()))})" if images else ""
            console.print(f"  wave {progress['wave']} → {progress['target_version']}{onto}: failure budget"
                          f" {progress['failure_budget']}, {progress['failed']} failed")
            _render_wave(progress, console)
        if progress.get("pools"):
            print_columns("node pools", ("NODE POOL", "FROM", "TO", "NODES DONE", "STATUS", "REPLACEMENT"),
                          [(pool["name"], pool["from_version"], pool["to_version"], f"{pool['nodes_done']}/{pool['nodes_total']}",
                            pool["status"], pool.get("replacement_pool") or "-") for pool in progress["pools"]], out=console)
        if progress.get("message"):
            console.print(f"  {progress['message']}")
    if described.get("failure"):
        console.print(f"  [red]why it stopped:[/] {described['failure']}")


class CountColumn(MofNCompleteColumn):
    """Done of total, and nothing for a row without a total (the step's own row said "0/?")."""

    def render(self, task: Task) -> Text:
        return Text("") if task.total is None else super().render(task)


async def follow(handle: WorkflowHandle, console: Console, *, interval: float = 0.5) -> dict:
    """Show a progress bar for the operation's step and, by its kind, for the control plane and each node pool (an
    upgrade, a rollback) or each stage (a wave, a rollout) until it ends."""
    from temporalio.client import WorkflowFailureError  # here: the SDK costs every command's start otherwise

    from regatta.models.search_attributes import FINAL_PROGRESS_MEMO

    outcome = asyncio.ensure_future(handle.result())
    bars: dict[str, TaskID] = {}
    try:  # which bars are drawn is the kind's (the catalog's), not a guess from the keys its progress has
        entry = operation_catalog.by_workflow((await handle.describe()).workflow_type)
    except Exception:  # noqa: BLE001 - undescribed, it is followed by its phase and step alone
        entry = None
    kind = entry.kind if entry else ""
    with Progress(TextColumn("{task.description}"), BarColumn(), CountColumn(), TextColumn("{task.fields[state]}"),
                  console=console, transient=False) as bar:
        step = bar.add_task("step", total=None, state="")

        def show(progress: dict) -> None:
            bar.update(step, description=f"[bold]{progress['phase']}[/]", state=progress.get("waiting_for") or progress["step"])
            if kind in ("upgrade", "rollback") and "control plane" not in bars and progress["control_plane"] != "skipped":
                bars["control plane"] = bar.add_task("control plane", total=1, state="")
            if "control plane" in bars:
                bar.update(bars["control plane"], completed=1 if progress["control_plane"] == "done" else 0,
                           state=progress["control_plane"])
            for stage in progress["stages"] if kind in ("wave", "policy") else []:
                name = f"stage {stage['name']}"
                if name not in bars:
                    bars[name] = bar.add_task(name, total=max(len(stage["clusters"]), 1), state="")
                finished = sum(1 for c in stage["clusters"] if c["status"] in ("succeeded", "at_target", "applied", "failed", "aborted", "skipped",
                                                                     "not_ready"))
                bar.update(bars[name], completed=finished, state=stage["status"])
            for pool in progress["pools"] if kind in ("upgrade", "rollback") else []:
                name = f"pool {pool['name']}"
                if name not in bars:
                    bars[name] = bar.add_task(name, total=max(pool["nodes_total"], 1), state="")
                bar.update(bars[name], completed=pool["nodes_done"], state=pool["status"])

        while not outcome.done():
            try:
                progress = await handle.query("progress", result_type=dict)
            except Exception:  # noqa: BLE001 - a query can race the workflow's end; try again
                progress = None
            if progress:
                show(progress)
            await asyncio.wait([outcome], timeout=interval)
        # The last frame is where it ended, not the last poll before: an ended upgrade keeps its progress in its
        # memo (read without a worker's replay); a wave or a rollout keeps none and is asked once more.
        try:
            final = await (await handle.describe()).memo_value(FINAL_PROGRESS_MEMO, None)
            final = final or await handle.query("progress", result_type=dict)
        except Exception:  # noqa: BLE001 - the bars as last polled are still the truth of that moment
            final = None
        if final:
            show(final)
    try:
        result = outcome.result()
    except WorkflowFailureError as error:
        raise OperationFailed(cause_of(error)) from None
    if outcomes.verdict("COMPLETED", result.get("outcome")) != "succeeded":
        raise OperationFailed(f"{result.get('outcome')}: {result.get('message')}")
    console.print(f"[green]{result.get('message')}[/]")
    return result
