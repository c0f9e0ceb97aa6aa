"""What `regatta upgrade rehearse` and `regatta wave rehearse` share: the twin they run on (a file, or a snapshot taken
now of the clusters they need), the rehearsal on a private stack (regatta/rehearsal.py), and how its report is shown.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Coroutine, Mapping
from datetime import UTC
from typing import Annotated, Any, TypeVar

import typer

from regatta.cli.arguments import ListOutput, ListOutputOption, Output, OutputOption
from regatta.cli.context import open_inventory
from regatta.cli.exits import Refused, run_command
from regatta.cli.render import console, errors, print_columns, said
from regatta.formats.fleet_file import FleetFileError, FleetSpec, load_fleet
from regatta.models import ClusterUpgradeInput
from regatta.models.policy import BundleSpec
from regatta.models.rehearsal import ClusterRehearsal, PolicyRehearsal, RehearsalRecord, WaveRehearsal
from regatta.settings import Settings

T = TypeVar("T")
DEFAULT_COMPRESS = 60.0  # an hour of the real fleet in a minute of the twin


def twin_for(names: list[str], twin_file: str | None) -> FleetSpec:
    """The twin a rehearsal runs on: `--twin FILE` as written, or the named clusters read now (a snapshot)."""
    if twin_file:
        try:
            twin = load_fleet(twin_file)
        except FleetFileError as error:
            raise Refused(f"--twin {twin_file}: {error}") from None
        missing = sorted(set(names) - {c.name for c in twin.clusters})
        if missing:
            raise Refused(f"--twin {twin_file} does not hold {', '.join(missing)}: take a new one (regatta fleet snapshot"
                          " --output FILE) or leave --twin out to read them now")
        return twin
    from regatta.inventory.twin_snapshot import snapshot
    from regatta.kube.connect import ClusterConnections

    inventory = open_inventory()
    records = [inventory.get_cluster(name) for name in names]
    taken = snapshot(ClusterConnections(sim_url=Settings.from_env().sim_url), inventory, records)
    unread = [m for m in taken.left_out if m.what == "the whole cluster" and m.cluster in names]
    if unread:
        raise Refused("cannot rehearse without reading " + "; ".join(f"{m.cluster}: {m.why}" for m in unread))
    return taken.fleet


def _on_a_private_stack(run: Callable[[Callable[[str], None]], Coroutine[Any, Any, T]], *, compress: float) -> T:
    """A rehearsal run to its end, saying what it does on stderr; what it cannot run is a refusal (exit 2)."""
    if compress < 1:
        raise Refused(f"--compress {compress:g}: the twin runs faster than the fleet, 1 or more (default {DEFAULT_COMPRESS:g})")
    try:
        return asyncio.run(run(lambda line: errors.print(said(line), highlight=False)))
    except ValueError as error:
        raise Refused(str(error)) from None


def rehearse(twin: FleetSpec, requests: Mapping[str, ClusterUpgradeInput], *, compress: float) -> dict[str, ClusterRehearsal]:
    from regatta.rehearsal import rehearse_upgrades

    rehearsed = _on_a_private_stack(lambda say: rehearse_upgrades(twin, requests, compress=compress, say=say),
                                    compress=compress)
    return corrected(twin, rehearsed)


def corrected(twin: FleetSpec, rehearsed: Mapping[str, ClusterRehearsal]) -> dict[str, ClusterRehearsal]:
    """Each prediction times its cloud's correction, learned from the comparisons kept with earlier rehearsals (what
    real upgrades took against what the twin said: `regatta.rules.rehearsals.corrections`), each said on stderr."""
    from regatta.inventory.rehearsal_records import timing_pairs
    from regatta.rules import rehearsals

    inventory = open_inventory()
    clouds = {r.name: r.provider for r in inventory.list_clusters()} | {c.name: c.provider for c in twin.clusters}
    pairs: dict[str, list[tuple[float, float]]] = {}
    for cluster, predicted, actual in timing_pairs(inventory):
        if cluster in clouds:
            pairs.setdefault(clouds[cluster], []).append((predicted, actual))
    learned = rehearsals.corrections(pairs)
    for correction in learned.values():
        errors.print(said(f"corrected: {correction.said}"), highlight=False)
    return {name: rehearsals.corrected(r, learned.get(clouds.get(name, ""))) for name, r in rehearsed.items()}


def corrections_said(rehearsed: Mapping[str, ClusterRehearsal], twin: FleetSpec) -> list[str]:
    """What the wave's report says it assumed of the corrections applied."""
    clouds = {c.name: c.provider for c in twin.clusters}
    applied = sorted({(clouds.get(name, "?"), r.corrected_by) for name, r in rehearsed.items() if r.corrected_by != 1.0})
    return [f"{cloud} upgrades take {factor:g} times what the twin said: the median of real / rehearsed over its"
            " upgrades held against earlier rehearsals" for cloud, factor in applied]


def rehearse_bundle(twin: FleetSpec, bundle: BundleSpec, *, targets: list[str], compress: float) -> PolicyRehearsal:
    """The bundle's rollout on the twin's clusters it targets (and a Cluster API cluster's management cluster)."""
    from regatta.rehearsal import rehearse_rollout

    specs = {c.name: c for c in twin.clusters}
    needed = set(targets) | {m.context for name in targets if name in specs and (m := specs[name].management) is not None}
    twin = twin.model_copy(update={"clusters": [c for c in twin.clusters if c.name in needed]})
    inventory = open_inventory()
    known = {r.name: r for r in inventory.list_clusters() if r.name in needed}
    placed = inventory.placement(bundle.name) if bundle.placement is not None else None
    return _on_a_private_stack(lambda say: rehearse_rollout(twin, bundle, compress=compress, known=known,
                                                            placed=placed, say=say), compress=compress)


def render_policy(report: PolicyRehearsal, *, output: str) -> None:
    if output == "json":
        print(json.dumps(report.model_dump(mode="json"), indent=2))
        return
    console.print(said(f"bundle {report.bundle} revision {report.revision}, rehearsed on the twin: {report.outcome}"
                       f" after {_minutes(report.total_seconds)}" + (f": {report.message}" if report.message else "")),
                  highlight=False)
    console.print("stages:")  # headings on stdout: two tables follow each other
    print_columns("", ("STAGE", "MODE", "STARTS", "ENDS", "FAILURES", "APPROVAL", "HALTS"),
                  [(stage.name, stage.mode or "—", _minutes(stage.starts_seconds), _minutes(stage.ends_seconds),
                    str(stage.failures), "asked" if stage.approval_required else "-", "yes" if stage.halts else "-")
                   for stage in report.stages])
    console.print("clusters:")
    print_columns("", ("CLUSTER", "STAGE", "OUTCOME", "STARTS", "TAKES", "SAYS"),
                  [(c.cluster, c.stage, c.outcome, _minutes(c.starts_seconds), _minutes(c.seconds), c.detail[:160])
                   for c in report.clusters], fit=True)
    for cluster, why in sorted(report.left_out.items()):
        console.print(said(f"{cluster}: not in the rollout: {why}"), highlight=False)
    for line in report.not_rehearsed:
        console.print(said(f"not rehearsed: {line}"), highlight=False)
    console.print(said(f"assumes {'; '.join(report.assumes)}"), highlight=False)


def _minutes(seconds: float | None) -> str:
    return "—" if seconds is None else f"{seconds / 60:.0f} min"


def _stall_lines(cluster: str, rehearsal_stalls) -> list[str]:
    return [f"{cluster}: the drain of {s.node} held {_minutes(s.seconds)} by {', '.join(s.budgets) or 'no budget named'}"
            f" ({', '.join(s.pods)}), reaching {s.reached}" for s in rehearsal_stalls]


def render_upgrades(rehearsed: Mapping[str, ClusterRehearsal], *, output: str) -> None:
    if output == "json":
        print(json.dumps([r.model_dump(mode="json") for r in rehearsed.values()], indent=2))
        return
    print_columns("rehearsed on the twin", ("CLUSTER", "REHEARSED AS", "OUTCOME", "PREDICTED", "DRAINS HELD", "SAYS"),
                  [(r.cluster, r.rehearsed_as, r.outcome, _minutes(r.predicted_seconds), str(len(r.stalls)),
                    r.message[:160]) for r in rehearsed.values()], fit=True)
    for r in rehearsed.values():
        for line in _stall_lines(r.cluster, r.stalls) + [f"{r.cluster}: {e}" for e in r.escalations] + [
                f"{r.cluster}: not rehearsed: {what}" for what in r.left_out]:
            console.print(said(line), highlight=False)


def render_wave(report: WaveRehearsal, *, output: str) -> None:
    if output == "json":
        print(json.dumps(report.model_dump(mode="json"), indent=2))
        return
    ends = f"{report.ends.astimezone(UTC):%a %Y-%m-%d %H:%M} UTC" if report.ends else "never"
    console.print(f"[bold]{said(report.wave)}[/] to {said(report.target_version)}, rehearsed on the twin: ends {ends}"
                  f" ({_minutes(report.total_seconds)} from its start)"
                  + (f"; [bold red]halted at stage {report.halted_at}[/] by its failure budget" if report.halted_at else ""))
    console.print("stages:")  # headings on stdout: two tables follow each other
    print_columns("", ("STAGE", "STARTS (UTC)", "ENDS (UTC)", "FAILURES", "BUDGET", "HALTS"),
                  [(stage.name, f"{stage.starts:%a %H:%M}" if stage.starts else "—",
                    f"{stage.ends:%a %H:%M}" if stage.ends else "—", str(stage.failures), str(stage.failure_budget),
                    "yes" if stage.halts else "-") for stage in report.stages])
    console.print("clusters:")
    print_columns("", ("CLUSTER", "STAGE", "OUTCOME", "STARTS (UTC)", "TAKES", "BECAUSE"),
                  [(c.cluster, c.stage or "—", c.outcome + (f" ({c.rehearsed})" if c.rehearsed and c.rehearsed != c.outcome
                                                           else ""),
                    f"{c.starts:%a %H:%M}" if c.starts else "—", _minutes(c.predicted_seconds), c.because)
                   for c in report.clusters], fit=True)
    for c in report.clusters:
        for line in _stall_lines(c.cluster, c.stalls):
            console.print(said(line), highlight=False)
    for line in report.left_out:
        console.print(said(f"not rehearsed: {line}"), highlight=False)
    console.print(said(f"assumes {'; '.join(report.assumes)}"), highlight=False)



def keep_report(report: WaveRehearsal | PolicyRehearsal | list[ClusterRehearsal], *, subject: str) -> None:
    """Keep the rehearsal in the inventory, to be held against the real run (`regatta rehearsal show ID`)."""
    import getpass

    from regatta.inventory.rehearsal_records import keep

    record = keep(open_inventory(), report=report, subject=subject, requested_by=getpass.getuser())
    errors.print(f"kept as {record.rehearsal_id}: `regatta rehearsal show {record.rehearsal_id}` holds it against the"
                 " real run once that has run", highlight=False)


rehearsal_app = typer.Typer(no_args_is_help=True, help="Rehearsals kept: what each predicted, and how it held against"
                            " the real run.")


@rehearsal_app.command("list")
def rehearsal_list(output: ListOutputOption = ListOutput.table):
    """The rehearsals kept, newest first, with how each held against the real run when it was last shown."""

    def body():
        from regatta.cli.render import show_list
        from regatta.inventory.rehearsal_records import listing

        records = listing(open_inventory())

        def row(r: RehearsalRecord) -> tuple:
            a = r.accuracy
            return (r.rehearsal_id, r.kind, r.subject, f"{r.rehearsed_at.astimezone(UTC):%Y-%m-%d %H:%M}",
                    len(r.clusters), a.ended if a else "—", a.outcomes_agreed if a else "—",
                    f"{a.mean_abs_error:.0%}" if a and a.mean_abs_error is not None else "—")

        show_list(records, output, title=f"{len(records)} rehearsals, newest first", row=row,
                  columns=("REHEARSAL", "KIND", "OF", "REHEARSED (UTC)", "CLUSTERS", "ENDED SINCE", "AS REHEARSED",
                           "MEAN ERROR"), name=lambda r: r.rehearsal_id,
                  data=lambda r: r.model_dump(mode="json", exclude={"wave", "upgrades", "policy"}))

    run_command(body)


@rehearsal_app.command("show")
def rehearsal_show(rehearsal_id: Annotated[str, typer.Argument(help="the rehearsal's id, as `regatta rehearsal list`"
                                                                    " shows it")],
                   output: OutputOption = Output.table):
    """What a rehearsal predicted, held against what the real run did since (each cluster's upgrade as the audit trail
    recorded it: its outcome and time, and whether the budgets it said would hold a drain did). The comparison is
    kept with it."""

    def body():
        from regatta.inventory.rehearsal_records import check, get

        inventory = open_inventory()
        record = get(inventory, rehearsal_id)
        if record is None:
            raise Refused(f"no rehearsal {rehearsal_id}: `regatta rehearsal list` shows those kept")
        record = check(inventory, record)
        if output == "json":
            print(json.dumps(record.model_dump(mode="json"), indent=2))
            return
        if record.wave is not None:
            render_wave(record.wave, output="table")
        elif record.policy is not None:
            render_policy(record.policy, output="table")
            console.print("a bundle's rollout is not held against its real run", highlight=False)
            return
        else:
            render_upgrades({u.cluster: u for u in record.upgrades}, output="table")
        render_accuracy(record)

    run_command(body)


def render_accuracy(record: RehearsalRecord) -> None:
    if record.operation_id:
        attached = f" at {record.attached_at.astimezone(UTC):%Y-%m-%d %H:%M} UTC" if record.attached_at else ""
        console.print(said(f"attached to {record.operation_id} when it started{attached}: its real run is read from"
                           " then"), highlight=False)
    accuracy = record.accuracy
    if accuracy is None or not accuracy.ended:
        console.print("no cluster's real upgrade has ended since this rehearsal", highlight=False)
        return
    print_columns("held against the real run", ("CLUSTER", "REHEARSED", "REAL", "PREDICTED", "TOOK", "ERROR", "BUDGETS MET"),
                  [(c.cluster, c.predicted_outcome, c.actual_outcome or "not ended", _minutes(c.predicted_seconds),
                    _minutes(c.actual_seconds), f"{c.error:+.0%}" if c.error is not None else "—",
                    f"{len(c.stalls_met)} of {len(c.stalls_predicted)}" if c.stalls_predicted else "—")
                   for c in accuracy.clusters])
    mean = f"{accuracy.mean_abs_error:.0%}" if accuracy.mean_abs_error is not None else "—"
    console.print(f"{accuracy.ended} ended since; {accuracy.outcomes_agreed} as rehearsed; mean error {mean};"
                  f" {accuracy.stalls_met} of {accuracy.stalls_predicted} predicted holds met", highlight=False)
