"""Rehearsals kept in the inventory, over the API and in the fleet view: a token sees a rehearsal only when it sees
every cluster it holds (one it may not see is one that is not there), and each is shown held against the real run."""

from __future__ import annotations

import uuid

import httpx

from regatta.api.app import create_app
from regatta.api.tokens import create_token
from regatta.inventory import rehearsal_records
from regatta.models import OperationRecord
from regatta.models.rehearsal import ClusterRehearsal, DrainStall
from tests.browsing import Browser


async def test_a_rehearsal_is_listed_to_whom_sees_its_clusters_and_held_against_the_real_run(
        queue_settings, inventory, add_cluster):
    staging, prod = add_cluster("reh-staging", env="staging"), add_cluster("reh-prod", env="prod")
    stall = DrainStall(node="pool0-001", budgets=["shop/checkout-pdb"], pods=["shop/checkout-0000ab"], seconds=600,
                       reached="retrying")
    mine = rehearsal_records.keep(inventory, subject=staging, requested_by="sre", report=[ClusterRehearsal(
        cluster=staging, rehearsed_as=staging, outcome="failed", predicted_seconds=1200, stalls=[stall])])
    theirs = rehearsal_records.keep(inventory, subject=prod, requested_by="sre", report=[ClusterRehearsal(
        cluster=prod, rehearsed_as=prod, outcome="succeeded", predicted_seconds=900)])
    # the staging cluster's real upgrade, as the trail records it after the rehearsal
    for seq, (outcome, detail) in enumerate((("started", ""), ("failed", "PodEvictionFailure ['shop/checkout-00ff12']"))):
        inventory.append_audit(OperationRecord(operation_id=f"cluster-{staging}", operation="ClusterUpgrade",
                                               cluster=staging, requested_by="sre", action="upgrade", outcome=outcome,
                                               detail=detail, seq=seq + 1, run_id=f"run-{uuid.uuid4().hex[:6]}"))
    app = create_app(queue_settings, inventory)
    _, staging_token = create_token(inventory, name=f"reh-{uuid.uuid4().hex[:6]}", role="viewer", environments=["staging"])
    _, every_token = create_token(inventory, name=f"reh-{uuid.uuid4().hex[:6]}", role="viewer", environments=["*"])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://regatta.test") as api:
        def bearer(token: str) -> dict:
            return {"Authorization": f"Bearer {token}"}

        listed = (await api.get("/v1/rehearsals", headers=bearer(staging_token))).json()
        ids = [r["rehearsal_id"] for r in listed]
        assert mine.rehearsal_id in ids and theirs.rehearsal_id not in ids
        assert all(r["upgrades"] == [] and r["wave"] is None for r in listed)  # the list is light; one is whole
        hidden = await api.get(f"/v1/rehearsals/{theirs.rehearsal_id}", headers=bearer(staging_token))
        assert hidden.status_code == 404 and theirs.rehearsal_id in hidden.json()["error"]
        everyone = [r["rehearsal_id"] for r in (await api.get("/v1/rehearsals", headers=bearer(every_token))).json()]
        assert {mine.rehearsal_id, theirs.rehearsal_id} <= set(everyone)
        bad = await api.get("/v1/rehearsals/..%2f..%2fetc", headers=bearer(every_token))
        assert bad.status_code in (404, 422)
        nobody = await api.get(f"/v1/rehearsals/{mine.rehearsal_id}")
        assert nobody.status_code == 401

        whole = await api.get(f"/v1/rehearsals/{mine.rehearsal_id}", headers=bearer(staging_token))
        assert whole.status_code == 200, whole.text
        accuracy = whole.json()["accuracy"]
        assert accuracy["ended"] == 1 and accuracy["outcomes_agreed"] == 1
        assert accuracy["clusters"][0]["stalls_met"] == ["shop/checkout-pdb"]  # the same workload's pod held it
    kept = rehearsal_records.get(inventory, mine.rehearsal_id)
    assert kept is not None and kept.accuracy is not None and kept.accuracy.ended == 1  # the comparison is kept

    browser = Browser(app, inventory)
    await browser.sign_in("viewer", "staging")
    page = await browser.page("/ui/rehearsals")
    assert page.status_code == 200 and mine.rehearsal_id in page.text and theirs.rehearsal_id not in page.text
    one = await browser.page(f"/ui/rehearsals/{mine.rehearsal_id}")
    assert one.status_code == 200 and f'data-cluster="{staging}"' in one.text and "1 as rehearsed" in one.text
    assert (await browser.page(f"/ui/rehearsals/{theirs.rehearsal_id}")).status_code == 404


def test_a_wave_attaches_its_rehearsal_and_what_real_upgrades_took_corrects_the_next(tmp_path):
    from datetime import UTC, datetime, timedelta

    from regatta.inventory import Inventory
    from regatta.models.rehearsal import AttachRehearsal, WaveClusterRehearsal, WaveRehearsal
    from regatta.rules import rehearsals

    inventory = Inventory(f"sqlite:///{tmp_path / 'inventory.db'}")  # its own: the trail's times are moved below
    names = [f"reh-learn{i}" for i in range(3)]
    wave_name = f"learn-{uuid.uuid4().hex[:6]}"
    now = datetime.now(UTC)
    report = WaveRehearsal(wave=wave_name, target_version="1.31", rehearsed_at=now, starts=now, compress=60, stages=[],
                           clusters=[WaveClusterRehearsal(cluster=n, stage="all", outcome="succeeded",
                                                          rehearsed="succeeded", predicted_seconds=1200.0,
                                                          corrected_by=1.2) for n in names])
    kept = rehearsal_records.keep(inventory, report=report, subject=wave_name, requested_by="sre")
    other = rehearsal_records.keep(inventory, report=report.model_copy(update={"target_version": "1.32"}),
                                   subject=wave_name, requested_by="sre")  # a later one, of another target
    asked = AttachRehearsal(wave=wave_name, target_version="1.31", operation_id=f"wave-{wave_name}",
                            started=now + timedelta(seconds=5))
    attached = rehearsal_records.attach(inventory, asked)
    assert attached is not None and attached.rehearsal_id == kept.rehearsal_id != other.rehearsal_id
    assert "3 succeeded" in attached.summary
    again = rehearsal_records.attach(inventory, asked)  # a retried activity answers the same
    assert again is not None and again.rehearsal_id == kept.rehearsal_id
    assert rehearsal_records.attach(inventory, asked.model_copy(update={"wave": "never-rehearsed"})) is None
    rerun = asked.model_copy(update={"started": asked.started + timedelta(hours=1)})
    assert rehearsal_records.attach(inventory, rerun) is None  # it is the first run's: its comparison stays that run's
    record = rehearsal_records.get(inventory, kept.rehearsal_id)
    assert record is not None and record.operation_id == f"wave-{wave_name}" and record.attached_at is not None

    # each cluster's real upgrade took 24 minutes where 20 were predicted (1,000 s said by the twin, times 1.2)
    for name in names:
        for seq, outcome in enumerate(("started", "succeeded")):
            inventory.append_audit(OperationRecord(operation_id=f"cluster-{name}", operation="ClusterUpgrade",
                                                   cluster=name, requested_by="sre", action="upgrade", outcome=outcome,
                                                   seq=seq + 1, run_id=f"run-{uuid.uuid4().hex[:6]}"))
    with inventory.engine.begin() as connection:  # the trail's clock, moved: the upgrade ended 24 minutes after it began
        from sqlalchemy import update

        from regatta.inventory.tables import AuditRow

        for name in names:
            connection.execute(update(AuditRow).where(AuditRow.operation_id == f"cluster-{name}",
                                                      AuditRow.outcome == "succeeded")
                               .values(at=now + timedelta(seconds=10 + 1440)))
            connection.execute(update(AuditRow).where(AuditRow.operation_id == f"cluster-{name}",
                                                      AuditRow.outcome == "started").values(at=now + timedelta(seconds=10)))
    held = rehearsal_records.hold_against(inventory, rehearsals_request(kept.rehearsal_id, wave_name))
    assert held.startswith(f"held against {kept.rehearsal_id}: 3 of 3 clusters ended as rehearsed; mean time error 17%")
    stranger = rehearsal_records.hold_against(inventory, rehearsals_request(kept.rehearsal_id, "another-wave"))
    assert stranger == f"{kept.rehearsal_id} is not a rehearsal attached to wave-another-wave: not compared"
    rehearsal_records.hold_against(inventory, rehearsals_request(kept.rehearsal_id, wave_name))  # shown again
    pairs = [(p, a) for c, p, a in rehearsal_records.timing_pairs(inventory) if c in names]
    assert pairs == [(1000.0, 1440.0)] * 3  # what the twin alone said, not its corrected prediction
    assert rehearsals.corrections({"eks": pairs})["eks"].factor == 1.44
    inventory.close()


def rehearsals_request(rehearsal_id: str, wave_name: str):
    from regatta.models.rehearsal import HoldAgainstRehearsal

    return HoldAgainstRehearsal(rehearsal_id=rehearsal_id, operation_id=f"wave-{wave_name}")


async def test_a_rehearsal_that_names_no_cluster_is_shown_only_to_a_token_that_sees_them_all(queue_settings, inventory):
    """A bundle's rehearsal that failed to plan names no cluster: `set() <= what a token sees` would show it to every
    token, with the reasons it names. It is shown to a token that sees every environment alone."""
    from datetime import UTC, datetime

    from regatta.models.rehearsal import PolicyRehearsal

    empty = rehearsal_records.keep(inventory, subject="guard", requested_by="sre", report=PolicyRehearsal(
        bundle="guard", revision="r1", rehearsed_at=datetime.now(UTC), compress=60, outcome="failed",
        message="planning failed", stages=[], clusters=[]))
    assert empty.clusters == []
    app = create_app(queue_settings, inventory)
    _, scoped = create_token(inventory, name=f"reh-{uuid.uuid4().hex[:6]}", role="viewer", environments=["staging"])
    _, every = create_token(inventory, name=f"reh-{uuid.uuid4().hex[:6]}", role="viewer", environments=["*"])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://regatta.test") as api:
        listed = await api.get("/v1/rehearsals", headers={"Authorization": f"Bearer {scoped}"})
        assert empty.rehearsal_id not in [r["rehearsal_id"] for r in listed.json()]
        hidden = await api.get(f"/v1/rehearsals/{empty.rehearsal_id}", headers={"Authorization": f"Bearer {scoped}"})
        assert hidden.status_code == 404
        shown = await api.get(f"/v1/rehearsals/{empty.rehearsal_id}", headers={"Authorization": f"Bearer {every}"})
        assert shown.status_code == 200 and shown.json()["policy"]["message"] == "planning failed"
        listed = (await api.get("/v1/rehearsals", headers={"Authorization": f"Bearer {every}"})).json()
        assert [r["policy"] for r in listed if r["rehearsal_id"] == empty.rehearsal_id] == [None]  # no report in a list
    browser = Browser(app, inventory)
    await browser.sign_in("viewer", "staging")
    assert (await browser.page(f"/ui/rehearsals/{empty.rehearsal_id}")).status_code == 404
