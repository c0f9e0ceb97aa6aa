"""`regatta policy preview|rollout|rollback|status|history`: bundles of policy and configuration
across the fleet.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from regatta.cli.arguments import Compress, ListOutput, ListOutputOption, Output, OutputOption, TwinFile
from regatta.cli.context import fleet_now, open_inventory
from regatta.cli.exits import run_command
from regatta.cli.render import COLOURS, console, counted, print_columns
from regatta.settings import Settings
from regatta.temporal.outcomes import OperationRefused as Refused

policy_app = typer.Typer(no_args_is_help=True, help="Policy and configuration bundles: preview, staged rollout,"
                         " rollback, compliance.")

BundleFile = Annotated[str, typer.Option("--file", help="the bundle as YAML (see examples/bundle.yaml)")]


def _read_bundle(file: str, *, ticket: str | None = None, requested_by: str | None = None):
    import getpass

    from regatta.formats.bundle_file import BundleFileError, load_bundle_file

    try:
        spec = load_bundle_file(file)
    except BundleFileError as error:
        raise Refused(str(error)) from None
    return spec.model_copy(update={"requested_by": requested_by or getpass.getuser(), **({"ticket": ticket} if ticket else {})})


def _short(value: Any) -> str:
    text = json.dumps(value, sort_keys=True) if not isinstance(value, str) else value
    return text if len(text) <= 60 else text[:57] + "..."


@policy_app.command("preview")
def policy_preview(
    file: BundleFile,
    cluster: Annotated[str | None, typer.Option(help="only this cluster")] = None,
    output: OutputOption = Output.table,
):
    """Per cluster: the objects it would be given and how they differ from what is live (a
    server-side dry run). Changes nothing. A cluster behind a site's agent is reached by its agent alone: its
    objects are shown, not how they differ."""
    from regatta.kube import bundles as kube_bundles
    from regatta.kube.connect import ClusterConnections
    from regatta.models.policy import GiveRenderedBundle
    from regatta.rules import bundle_targets, bundles

    def body():
        spec = _read_bundle(file)
        inventory = open_inventory()
        fleet = {c.name: c for c in inventory.list_clusters()}
        if cluster is not None and cluster not in fleet:
            raise Refused(f"no cluster {cluster} in the inventory")
        previous = inventory.placement(spec.name) if spec.placement is not None else None
        plan = bundle_targets.plan_policy(spec, list(fleet.values()), now=fleet_now(), previous=previous)
        first_stage: dict[str, Any] = {}
        for stage in plan.stages:
            for entry in stage.clusters:
                first_stage.setdefault(entry.name, stage)
        decisions = [d for d in plan.decisions if cluster is None or d.cluster == cluster]
        connections = ClusterConnections(sim_url=Settings.from_env().sim_url)
        answers: list[dict[str, Any]] = []
        try:
            for decision in decisions:
                if not decision.included:
                    answers.append({"cluster": decision.cluster, "included": False, "because": decision.because})
                    continue
                stage = first_stage[decision.cluster]
                record = fleet[decision.cluster]
                share = next((c.replicas for c in stage.clusters if c.name == decision.cluster), None)
                rendering = bundles.render(spec, record, mode=stage.mode, replicas=share if spec.placement else None)
                answer = {"cluster": decision.cluster, "included": True, "stage": stage.name, "mode": stage.mode,
                          "revision": rendering.revision, "overrides": rendering.overrides,
                          "objects": [o.body for o in rendering.objects], "reached": record.site is None,
                          "changes": None}  # null: not compared (a site cluster); [] would say nothing differs
                if record.site is not None:  # its API server answers its site's agent alone, never this machine
                    answer["because"] = (f"behind the site agent of {record.site}: a preview reads clusters from where"
                                         " it runs; the rollout reaches this one through the agent")
                else:
                    report = kube_bundles.give_rendered_bundle(connections.api_client(record.ref), GiveRenderedBundle(
                        cluster=record.ref, bundle=spec.name, rendering=rendering, force=spec.force, prune=spec.prune,
                        dry_run=True))
                    answer["changes"] = [c.model_dump(mode="json") for c in report.changes]
                answers.append(answer)
        finally:
            connections.close()
        if output == Output.json:
            print(json.dumps(answers, indent=2, default=str))
            return
        console.print(f"bundle [bold]{spec.name}[/] revision {plan.revision}: nothing is changed by a preview")
        for answer in answers:
            if not answer["included"]:
                console.print(f"[dim]{answer['cluster']}: left out: {answer['because']}[/]")
                continue
            mode = f", {answer['mode']}" if answer["mode"] else ""
            overrides = f", overrides {answer['overrides']}" if answer["overrides"] else ""
            console.print(f"[bold]{answer['cluster']}[/] (stage {answer['stage']}{mode}{overrides})")
            if not answer["reached"]:
                console.print(f"  not compared with what is live: {answer['because']}; it would be given:",
                              markup=False, highlight=False)
                for body in answer["objects"]:
                    where = f"{body['metadata'].get('namespace')}/" if body["metadata"].get("namespace") else ""
                    console.print(f"  {'give':>10}  {body['kind']} {where}{body['metadata']['name']}", markup=False,
                                  highlight=False)
            for change in answer["changes"] or []:
                key = change["key"]
                where = f"{key['namespace']}/" if key["namespace"] else ""
                console.print(f"  {change['action'].replace('would_', ''):>10}  {key['kind']} {where}{key['name']}")
                for field in change["fields"]:
                    console.print(f"              {field['path']}: {_short(field['before'])} → {_short(field['after'])}",
                                  markup=False, highlight=False)

    run_command(body)


def _render_plan(plan) -> None:
    console.print(f"bundle [bold]{plan.bundle}[/] revision {plan.revision}; failure budget {plan.failure_budget}")
    console.print("stages:")  # headings on stdout: two tables follow each other
    print_columns("", ("STAGE", "MODE", "AT ONCE", "APPROVAL", "MAX VIOLATIONS", "CLUSTERS"),
                  [(stage.name, stage.mode or "-", str(stage.concurrency), "yes" if stage.approval_required else "-",
                    str(stage.max_violations), ",".join(c.name for c in stage.clusters) or "-") for stage in plan.stages])
    console.print("clusters:")
    print_columns("", ("CLUSTER", "IN", "WHY"),
                  [(d.cluster, "yes" if d.included else "no", d.because) for d in plan.decisions])


async def _admit_and_start(spec, *, plan_only: bool, wait: bool, headline: str, output: OutputOption = Output.table) -> None:
    from regatta.cli.op import announce
    from regatta.temporal.admission import StartRefused, admit
    from regatta.temporal.operations import start

    try:
        admission = admit(spec, inventory=open_inventory(), now=fleet_now(), outbound_rules=Settings.from_env().outbound)
    except StartRefused as refusal:
        raise Refused(str(refusal)) from None
    plan, bundle = admission.policy_plan, admission.bundle
    assert plan is not None and bundle is not None  # a policy admission carries both
    if plan_only:
        if output == Output.json:
            print(plan.model_dump_json(indent=2))
        else:
            _render_plan(plan)
        return
    handle = await start(Settings.from_env(), bundle)
    total = len({c.name for stage in plan.stages for c in stage.clusters})
    await announce(handle, f"{headline} revision {plan.revision} to {counted(total, 'cluster')} in {counted(len(plan.stages), 'stage')}", wait=wait)


@policy_app.command("rehearse")
def policy_rehearse(
    file: BundleFile,
    twin: TwinFile = None,
    compress: Compress = 60.0,
    output: OutputOption = Output.table,
):
    """Roll the bundle out on a twin of the clusters it targets (the real PolicyRollout, in a private simulator and
    Temporal of its own) and say what the real rollout would do: each cluster given the bundle or refused and why, each
    stage's start and end, where the failure budget halts it, and its total. Touches nothing real; exit 0 whatever it
    predicts."""
    def body():
        from regatta.cli.rehearse import keep_report, rehearse_bundle, render_policy, twin_for
        from regatta.rules import bundle_targets

        spec = _read_bundle(file)
        inventory = open_inventory()
        previous = inventory.placement(spec.name) if spec.placement is not None else None
        plan = bundle_targets.plan_policy(spec, inventory.list_clusters(), now=fleet_now(), previous=previous)
        targets = sorted({c.name for stage in plan.stages for c in stage.clusters})
        if not targets:
            raise Refused(f"bundle {spec.name} targets no cluster: `regatta policy rollout --file {file} --plan-only`"
                          " says why each is left out")
        report = rehearse_bundle(twin_for(targets, twin), spec, targets=targets, compress=compress)
        render_policy(report, output=output.value)
        keep_report(report, subject=spec.name)

    run_command(body)


@policy_app.command("rollout")
def policy_rollout(
    file: BundleFile,
    plan_only: Annotated[bool, typer.Option(help="print every cluster in or out and the stages; start nothing")] = False,
    ticket: Annotated[str | None, typer.Option(help="change ticket (overrides the file's)")] = None,
    wait: Annotated[bool, typer.Option(help="follow it until it ends")] = False,
    requested_by: Annotated[str | None, typer.Option(help="who asks (default: $USER)")] = None,
    output: Annotated[Output, typer.Option(help="with --plan-only: table or json")] = Output.table,
):
    """Roll a bundle out stage by stage (operation id: policy-BUNDLE)."""
    async def body():
        spec = _read_bundle(file, ticket=ticket, requested_by=requested_by)
        await _admit_and_start(spec, plan_only=plan_only, wait=wait, headline=f"bundle {spec.name}", output=output)

    run_command(body())


@policy_app.command("rollback")
def policy_rollback(
    bundle: Annotated[str, typer.Argument(help="the bundle's name")],
    ticket: Annotated[str | None, typer.Option(help="change ticket")] = None,
    wait: Annotated[bool, typer.Option(help="follow it until it ends")] = False,
    plan_only: Annotated[bool, typer.Option(help="print the plan; start nothing")] = False,
    requested_by: Annotated[str | None, typer.Option(help="who asks (default: $USER)")] = None,
):
    """Roll the bundle's previous revision out, the same way as any rollout (stages, gates, approvals)."""
    import getpass

    def previous():
        from regatta.rules import suggestions

        inventory = open_inventory()
        revisions = inventory.bundle_revisions(bundle)
        if not revisions:
            raise Refused(f"no bundle {bundle} has been rolled out; nothing to roll back"
                          + suggestions.known_names_hint(bundle, inventory.bundle_names(), what="bundle"))
        if len(revisions) < 2:
            raise Refused(f"bundle {bundle} has one revision ({revisions[0].revision}); there is no earlier one to roll"
                          " back to")
        current, earlier = revisions[0], revisions[1]
        return earlier.model_copy(update={"rollback_of": current.revision, "requested_by": requested_by or getpass.getuser(),
                                          "ticket": ticket or earlier.ticket})

    spec = run_command(previous)
    run_command(_admit_and_start(spec, plan_only=plan_only, wait=wait,
                                 headline=f"rollback of bundle {bundle} from {spec.rollback_of} to"))


STATE_COLOURS = {"compliant": "green", "non_compliant": "red", "error": "red", "drifted": "yellow", "pending": "dim"}


@policy_app.command("status")
def policy_status(
    bundle: Annotated[str | None, typer.Option(help="which clusters break this bundle's policies")] = None,
    cluster: Annotated[str | None, typer.Option(help="what this cluster breaks")] = None,
    output: OutputOption = Output.table,
):
    """Compliance: every cluster × bundle with its state, revision, mode and violations."""

    def body():
        if bundle and cluster:
            raise Refused("give --bundle or --cluster, not both (`regatta policy history CLUSTER BUNDLE` shows one record)")
        inventory = open_inventory()
        records = inventory.compliance(bundle=bundle, cluster=cluster)
        if output == Output.json:
            print(json.dumps([r.model_dump(mode="json") for r in records], indent=2))
            return
        if not records:
            from regatta.rules import suggestions

            known = inventory.bundle_names() if bundle else []
            console.print("no compliance records" + (f" for bundle {bundle}" if bundle else "")
                          + (f" for cluster {cluster}" if cluster else "") + " yet"
                          + (suggestions.known_names_hint(bundle, known, what="bundle")
                             if bundle and bundle not in known else ""))
            return
        print_columns("compliance", ("CLUSTER", "BUNDLE", "STATE", "REVISION", "MODE", "VIOLATIONS", "EVALUATED", "DETAIL"),
                      [(r.cluster, r.bundle, r.state, r.revision, r.mode or "-", str(r.violations),
                        f"{r.evaluated_at:%Y-%m-%d %H:%M:%S}" if r.evaluated_at else "-", r.detail) for r in records],
                      [{2: STATE_COLOURS[r.state]} if STATE_COLOURS.get(r.state) in COLOURS else {} for r in records], fit=True)
        counts: dict[str, int] = {}
        for r in records:
            counts[r.state] = counts.get(r.state, 0) + 1
        console.print(", ".join(f"{n} {state}" for state, n in sorted(counts.items())))

    run_command(body)


@policy_app.command("history")
def policy_history(
    cluster: Annotated[str, typer.Argument(help="the cluster")],
    bundle: Annotated[str, typer.Argument(help="the bundle")],
    output: OutputOption = Output.table,
):
    """Every change of one cluster × bundle's compliance, oldest first."""

    def body():
        records = open_inventory().compliance_history(cluster=cluster, bundle=bundle)
        if output == Output.json:
            print(json.dumps([r.model_dump(mode="json") for r in records], indent=2))
            return
        print_columns(f"{cluster} × {bundle}", ("EVALUATED", "STATE", "REVISION", "MODE", "VIOLATIONS", "DETAIL"),
                      [(f"{r.evaluated_at:%Y-%m-%d %H:%M:%S}" if r.evaluated_at else "-", r.state, r.revision,
                        r.mode or "-", str(r.violations), r.detail) for r in records])

    run_command(body)


drift_app = typer.Typer(no_args_is_help=True, help="Drift: what changed in the clusters since Regatta applied a bundle.")
policy_app.add_typer(drift_app, name="drift")


@drift_app.command("sweep")
def drift_sweep(
    bundle: Annotated[str | None, typer.Option(help="only this bundle (default: every bundle)")] = None,
    wait: Annotated[bool, typer.Option(help="follow it until it ends")] = False,
    ticket: Annotated[str | None, typer.Option(help="change ticket")] = None,
):
    """Compare every applied object with what is live (operation id: drift-BUNDLE or drift-all)."""
    import getpass

    from pydantic import ValidationError

    from regatta.cli.op import announce
    from regatta.models.policy import DriftSweepInput
    from regatta.temporal.operations import start

    async def body():
        try:
            request = DriftSweepInput(bundle=bundle, requested_by=getpass.getuser(), ticket=ticket)
        except ValidationError:
            raise Refused(f"--bundle {bundle!r} is not a bundle name (lowercase letters, digits and -)") from None
        await announce(await start(Settings.from_env(), request), None, wait=wait)

    run_command(body())


@drift_app.command("list")
def drift_list(
    cluster: Annotated[str | None, typer.Option(help="only this cluster")] = None,
    bundle: Annotated[str | None, typer.Option(help="only this bundle")] = None,
    output: ListOutputOption = ListOutput.table,
):
    """What the last sweep found: each drift's object, paths with before and after, who and when."""
    from regatta.cli.render import show_list

    def body():
        found = open_inventory().drifts(cluster=cluster, bundle=bundle)
        if not found and output in ("table", "wide"):
            console.print("no drift")
            return

        def row(item) -> tuple:
            d, _ = item
            what = "deleted" if d.kind == "deleted" else "; ".join(f"{f.path}: {_short(f.before)} → {_short(f.after)}"
                                                                  for f in d.fields)
            state = ("suppressed: " + d.suppressed_by) if d.suppressed_by else "remediated" if d.remediated else "open"
            where = f"{d.key.namespace}/" if d.key.namespace else ""
            return (d.cluster, d.bundle, f"{d.key.kind} {where}{d.key.name}", state, d.changed_by or "-",
                    d.changed_at or "-", what)

        show_list(found, output, title=f"{len(found)} drifts", columns=("CLUSTER", "BUNDLE", "OBJECT", "STATE", "BY",
                                                                         "WHEN", "DRIFT"), row=row,
                  name=lambda item: f"{item[0].cluster}/{item[0].key.kind}/{item[0].key.name}",
                  data=lambda item: {**item[0].model_dump(mode="json"), "found_at": item[1].isoformat()})

    run_command(body)


@drift_app.command("suppress")
def drift_suppress(
    cluster: Annotated[str, typer.Argument(help="the cluster")],
    bundle: Annotated[str, typer.Argument(help="the bundle")],
    reason: Annotated[str, typer.Option(help="why this drift is accepted (kept in the audit trail)")],
    ticket: Annotated[str, typer.Option(help="the ticket that accepts it")],
    until: Annotated[str, typer.Option(help="when the suppression ends, e.g. 2026-12-31T00:00:00Z")],
    kind: Annotated[str | None, typer.Option(help="only objects of this kind")] = None,
    name: Annotated[str | None, typer.Option(help="only the object of this name")] = None,
    namespace: Annotated[str | None, typer.Option(help="only objects in this namespace")] = None,
    path: Annotated[str, typer.Option(help="only changes under this JSON pointer, e.g. /data/level")] = "",
):
    """Accept a known drift for a while: sweeps report it as suppressed, not drifted."""
    import getpass
    from datetime import UTC, datetime

    from pydantic import ValidationError

    from regatta.models import OperationRecord
    from regatta.models.policy import DriftSuppression

    def body():
        try:
            ends = datetime.fromisoformat(until)
        except ValueError:
            raise Refused(f"--until {until!r} is not a time; write e.g. 2026-12-31T00:00:00Z") from None
        if ends.tzinfo is None:
            raise Refused("--until needs a time zone, e.g. 2026-12-31T00:00:00Z")
        if ends <= fleet_now():
            raise Refused(f"--until {until} has passed; a suppression ends in the future")
        if path and not path.startswith("/"):
            raise Refused(f"--path {path!r} is not a JSON pointer; start it with /")
        inventory = open_inventory()
        inventory.get_cluster(cluster)  # an unknown cluster is refused, naming the ones there are
        try:
            suppression = DriftSuppression(cluster=cluster, bundle=bundle, reason=reason, ticket=ticket, until=ends,
                                           by=getpass.getuser(), path=path,
                                           match={"kind": kind, "name": name, "namespace": namespace})
        except ValidationError as error:
            raise Refused(str(error)) from None
        inventory.suppress_drift(suppression)
        inventory.append_audit(OperationRecord(
            operation_id=f"drift-suppress-{datetime.now(UTC):%Y%m%d%H%M%S}", operation="DriftSuppression", cluster=cluster,
            requested_by=suppression.by, ticket=ticket, action="suppress", outcome="suppressed",
            detail=f"{bundle} {kind or 'any kind'} {name or ''} {path or ''} until {ends.isoformat()}: {reason}"))
        console.print(f"drift of {bundle} on {cluster} suppressed until {ends.isoformat()} ({ticket})")

    run_command(body)
