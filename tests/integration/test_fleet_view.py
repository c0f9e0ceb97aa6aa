"""The fleet view over HTTP, as a browser drives it: a token exchanged for an HttpOnly,
SameSite=Strict session cookie; the fleet filtered, sorted and paginated on the server, only the
token's environments shown; a cluster's page; operations with the controls the role may use; a
form without the session's CSRF secret refused with nothing done; a revoked token's session ended."""

from __future__ import annotations

import asyncio
import re
import uuid

import httpx

from regatta.api.app import create_app
from regatta.models import AbortInput
from regatta.models.policy import PolicyRolloutProgress
from regatta.rules.operation_ids import policy_id
from tests.browsing import Browser, clusters_on
from tests.integration.conftest import wait_until
from tests.integration.placements import Fleet, roll_out


async def test_signing_in_and_the_fleet_filtered_sorted_and_paginated_on_the_server(browser, simulator, inventory, settings,
                                                                                      queue_settings):
    from regatta.models import PatchWaveInput
    from regatta.temporal.schedules import PatchWindow, control_schedule, create_patch_schedule

    fleet = Fleet(simulator, inventory, settings)
    names = fleet.add({"a": ("m5.xlarge", 2, "us-east-1"), "b": ("m5.large", 1, "us-west-2"),
                       "c": ("m5.large", 3, "us-west-2")}, environments={"a": "staging", "b": "staging", "c": "prod"})
    # a patch schedule whose wave takes cluster a, inside Sunday's 02:00 UTC window
    weekly = PatchWaveInput.model_validate({
        "name": f"view-{fleet.tag}", "target_version": "1.31", "selector": {"clusters": [names["a"]]},
        "stages": [{"name": "all"}],
        "maintenance_windows": [{"days": ["sun"], "start": "02:00", "duration_minutes": 60, "timezone": "UTC"}]})
    schedule = await create_patch_schedule(queue_settings, name=f"view-{fleet.tag}", wave=weekly,
                                           window=PatchWindow(days=("sun",), at="02:00", timezone="UTC"))
    first = await browser.page("/ui")
    assert first.status_code == 303 and first.headers["location"].startswith("/ui/login")  # no session: sign in
    bad = await browser.http.post("/ui/login", data={"token": "nope", "csrf": "forged"})
    assert bad.status_code == 403 and "did not come from this site" in bad.text

    await browser.sign_in("viewer", "staging")
    mine = await browser.page("/ui", label=f"placement={fleet.tag}")
    assert mine.status_code == 200
    assert clusters_on(mine.text) == [names["a"], names["b"]]  # prod is not this token's to see
    west = await browser.page("/ui", label=f"placement={fleet.tag}", region="us-west-2")
    assert clusters_on(west.text) == [names["b"]]
    dearest = await browser.page("/ui", label=f"placement={fleet.tag}", sort="cost", desc="1")
    assert clusters_on(dearest.text) == [names["a"], names["b"]]  # 2 × m5.xlarge costs more than 1 × m5.large
    paged = await browser.page("/ui", label=f"placement={fleet.tag}", per_page="1", page="2")
    assert clusters_on(paged.text) == [names["b"]] and "page 2 of 2" in paged.text and 'rel="prev"' in paged.text
    row = re.search(rf'<tr data-cluster="{names["a"]}">(.*?)</tr>', mine.text, re.S)[1]
    assert "1.30" in row and "healthy" in row and "ended 2025-07-23" in row and "us-east-1" in row
    assert re.search(r"Sun \d{4}-\d\d-\d\d 02:00", row) and schedule in row  # its next maintenance window
    await control_schedule(queue_settings, schedule, "delete")
    assert (await browser.page("/ui", sort="colour")).status_code == 422
    assert "give key=value" in (await browser.page("/ui", label="team")).text

    page = await browser.page(f"/ui/clusters/{names['a']}")
    assert page.status_code == 200 and "Node pools" in page.text and "m5.xlarge" in page.text
    hidden = await browser.page(f"/ui/clusters/{names['c']}")
    missing = await browser.page("/ui/clusters/no-such-cluster")
    assert hidden.status_code == missing.status_code == 404  # another environment's cluster: as if there were none
    assert "may see" in hidden.text and names["a"] not in hidden.text and names["a"] not in missing.text


async def test_operations_with_the_controls_a_role_may_use_and_forms_without_csrf_refused(
        browser, client, worker, task_queue, simulator, inventory, settings, queue_settings):
    fleet = Fleet(simulator, inventory, settings)
    fleet.add({"a": ("m5.large", 2, "us-east-1")})
    waiting = fleet.bundle({"divide": "weight"}, stages=[{"name": "gated", "approval_required": True}])
    handle = await roll_out(client, task_queue, waiting)
    await wait_until(handle, lambda p: p.phase == "awaiting_approval", "waiting", progress_type=PolicyRolloutProgress)
    operation = policy_id(waiting.name)
    try:
        viewer = Browser(create_app(queue_settings, inventory), inventory)
        await viewer.sign_in("viewer", "staging")
        seen = await viewer.page(f"/ui/operations/{operation}")
        assert seen.status_code == 200 and "awaiting_approval" in seen.text and 'id="controls"' not in seen.text
        refused = await viewer.http.post(f"/ui/operations/{operation}/pause",
                                         data={"csrf": viewer.csrf(seen.text), "reason": "viewer tries"})
        assert refused.status_code == 403 and "may not control" in refused.text

        await browser.sign_in("operator", "staging")
        page = await browser.page(f"/ui/operations/{operation}")
        assert 'id="controls"' in page.text and ">Pause<" in page.text and ">Approve<" not in page.text
        host = queue_settings.temporal_address.rsplit(":", 1)[0]
        assert f'href="http://{host}:8233/namespaces/{queue_settings.namespace}/workflows/{operation}"' in page.text
        forged = await browser.http.post(f"/ui/operations/{operation}/pause", data={"reason": "no csrf"})
        assert forged.status_code == 403 and "CSRF" in forged.text
        assert (await handle.query("progress", result_type=PolicyRolloutProgress)).paused is False  # nothing done
        too_long = await browser.http.post(f"/ui/operations/{operation}/pause",
                                           data={"csrf": browser.csrf(page.text), "reason": "x" * 501})
        assert too_long.status_code == 422 and "reason" in too_long.text  # said, not a 500, and nothing sent
        too_long_viewer = await viewer.http.post(f"/ui/operations/{operation}/pause",
                                                 data={"csrf": viewer.csrf(seen.text), "reason": "x" * 501})
        assert too_long_viewer.status_code == 403  # the role is weighed before the form is
        not_taken = await browser.http.post(f"/ui/operations/{operation}/resume", data={"csrf": browser.csrf(page.text)})
        assert not_taken.status_code == 303 and "resume+refused" in not_taken.headers["location"]
        paused = await browser.http.post(f"/ui/operations/{operation}/pause",
                                         data={"csrf": browser.csrf(page.text), "reason": "from the page"})
        assert paused.status_code == 303 and "pause%3A+accepted" in paused.headers["location"]
        assert (await handle.query("progress", result_type=PolicyRolloutProgress)).paused is True
        listed = await browser.page("/ui/operations")
        assert operation in listed.text
    finally:
        await handle.execute_update("abort", AbortInput(reason="done looking", requested_by="test"))
    lines = [(r.action, r.outcome) for r in inventory.audit(cluster="-") if r.operation_id == operation]
    assert ("api pause", "paused") in lines and ("api pause", "refused") in lines
    # Aborted, its workflow COMPLETED: the list shows what it came to, and not as good.
    assert (await asyncio.wait_for(handle.result(), 60)).outcome == "aborted"
    for _ in range(100):  # Temporal's visibility lists a closed run as closed a moment after it closed
        listed = await browser.page("/ui/operations")
        row = re.search(rf'<a href="/ui/operations/{operation}">{operation}</a></td><td>PolicyRollout</td><td>[^<]*</td>'
                        r'<td class="(\w+)">([^<]*)</td>', listed.text)
        if row is not None:
            break
        await asyncio.sleep(0.1)
    assert row is not None and row.groups() == ("bad", "aborted"), listed.text


async def test_a_revoked_token_ends_its_session_and_signing_out_ends_it_too(browser, inventory):
    from regatta.api.tokens import token_hash

    secret = await browser.sign_in("viewer", "*")
    assert (await browser.page("/ui")).status_code == 200
    inventory.revoke_token(inventory.token_by_hash(token_hash(secret)).name)
    assert (await browser.page("/ui")).status_code == 303
    await browser.sign_in("viewer", "*")
    page = await browser.page("/ui")
    out = await browser.http.post("/ui/logout", data={"csrf": browser.csrf(page.text)})
    assert out.status_code == 303 and (await browser.page("/ui")).status_code == 303


async def test_a_running_waves_page_shows_its_stages_and_its_forecast(browser, client, worker, task_queue, simulator,
                                                                      inventory):
    from tests.integration.waves import load_fleet, start_wave, wait_phase, wave_request

    tag = uuid.uuid4().hex[:5]
    names = load_fleet(simulator, inventory, tag, 2, env="staging")
    request = wave_request(tag, [{"name": "gated", "approval_required": True}])
    handle = await start_wave(client, task_queue, request)
    await wait_phase(handle, "awaiting_approval")
    try:
        await browser.sign_in("viewer", "staging")
        page = await browser.page(f"/ui/operations/{handle.id}")
        assert page.status_code == 200, page.text
        assert "<h3>gated" in page.text and all(name in page.text for name in names)
        forecast = re.search(r'<table id="forecast">(.*?)</table>', page.text, re.S)
        assert forecast and all(name in forecast[1] for name in names) and forecast[1].count("<tr>") == 3
    finally:
        await handle.execute_update("abort", AbortInput(reason="seen", requested_by="test"))


class Lifespan:
    """The API app's startup and shutdown, driven as uvicorn drives them (the ASGI lifespan protocol)."""

    def __init__(self, app):
        self.app = app
        self.to_app: asyncio.Queue = asyncio.Queue()
        self.from_app: asyncio.Queue = asyncio.Queue()

    async def __aenter__(self):
        self.task = asyncio.create_task(self.app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}},
                                                 self.to_app.get, self.from_app.put))
        await self.to_app.put({"type": "lifespan.startup"})
        assert (await asyncio.wait_for(self.from_app.get(), 30))["type"] == "lifespan.startup.complete"
        return self

    async def __aexit__(self, *_):
        await self.to_app.put({"type": "lifespan.shutdown"})
        assert (await asyncio.wait_for(self.from_app.get(), 30))["type"] == "lifespan.shutdown.complete"
        await self.task


async def answer_until(ask, check, what: str, *, timeout: float = 30) -> httpx.Response:
    """Ask until the answer passes `check`; fail, showing the last answer, when time runs out."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        answer = await ask()
        if check(answer):
            return answer
        assert asyncio.get_running_loop().time() < deadline, f"never {what}: {answer.status_code} {answer.text[:300]}"
        await asyncio.sleep(0.05)


async def test_the_api_is_ready_only_once_it_has_read_the_fleet_and_says_why_not(queue_settings, tmp_path, monkeypatch):
    """/readyz (the compose healthcheck, a load balancer's probe) answers 200 only once the fleet view's
    first page needs no read of the whole fleet; until then, and while the inventory cannot be read,
    503 and the reason. /healthz (alive) answers throughout."""
    from sqlalchemy import text

    from regatta.api import app as api_app
    from regatta.inventory import Inventory
    from regatta.models import ClusterRecord, NodePool

    monkeypatch.setattr(api_app, "READ_AGAIN_SECONDS", 0.2)
    inventory = Inventory(f"sqlite:///{tmp_path / 'inventory.db'}")
    records = [ClusterRecord(name=f"ready-{i}", provider="eks", region="us-east-1", environment="prod",
                             control_plane_version="1.30", node_pools=[NodePool(name="general", version="1.30",
                                                                                node_count=3, node_size="m5.large")])
               for i in range(3)]
    for record in records:
        inventory.upsert_cluster(record)
    with inventory.engine.begin() as connection:  # an inventory whose cluster table cannot be read
        connection.execute(text("ALTER TABLE clusters RENAME TO clusters_away"))
    app = create_app(queue_settings, inventory)
    browser = Browser(app, inventory)
    before = await browser.http.get("/readyz")
    assert before.status_code == 503 and before.json() == {"ready": False, "reason": "starting: reading the fleet"}
    async with Lifespan(app):
        unreadable = await answer_until(lambda: browser.http.get("/readyz"),
                                      lambda r: "cannot read the inventory" in r.json().get("reason", ""),
                                      "readyz says the inventory cannot be read")
        # no token needed, so nothing of the database's own words (hosts, users, the SQL) is shown
        assert unreadable.status_code == 503 and unreadable.json()["reason"] == (
            "cannot read the inventory (OperationalError); the API's log says why"), unreadable.text
        assert (await browser.http.get("/healthz")).status_code == 200  # alive all the same
        with inventory.engine.begin() as connection:
            connection.execute(text("ALTER TABLE clusters_away RENAME TO clusters"))
        ready = await answer_until(lambda: browser.http.get("/readyz"), lambda r: r.status_code == 200, "ready")
        assert ready.json() == {"ready": True}
        cache = app.state.fleet_cache
        assert sorted(cache.records) == [r.name for r in records]  # read before anyone asked for a page
        await browser.sign_in("viewer", "prod")
        page = await browser.page("/ui")
        assert clusters_on(page.text) == [r.name for r in records]
    await browser.http.aclose()
    inventory.close()  # its own SQLite file: left open, its connection is closed by the collector in a later test
