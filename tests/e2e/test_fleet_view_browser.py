"""The fleet view in a real browser: Debian's Chromium driven by Playwright for Python through its
`executable_path` (no browser is downloaded), against the API served by uvicorn on loopback. An
operator signs in with a token (an HttpOnly, SameSite=Strict cookie comes back), sorts, filters
and pages the fleet, opens a cluster, and pauses a rollout from its page; a viewer is not offered
the control. Screenshots of every page are kept under tests/artifacts/ (REGATTA_TEST_ARTIFACTS).

`make test` installs Debian's chromium when it is missing; without it these tests skip saying
so, and fail instead where REGATTA_REQUIRE_BROWSER=1 (CI)."""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from pathlib import Path

import pytest

from regatta.api.tokens import create_token
from regatta.models import AbortInput
from regatta.models.policy import PolicyRolloutProgress
from regatta.rules.operation_ids import policy_id
from tests.integration.conftest import wait_until
from tests.integration.placements import Fleet, roll_out

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARTIFACTS = Path(os.environ.get("REGATTA_TEST_ARTIFACTS", Path(__file__).parents[1] / "artifacts"))


@pytest.fixture
def chromium_path() -> str:
    if CHROMIUM is None:
        reason = "no chromium on this machine: `make test` installs Debian's (apt-get install chromium)"
        if os.environ.get("REGATTA_REQUIRE_BROWSER") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    return CHROMIUM


async def test_an_operator_and_a_viewer_use_the_fleet_view_in_chromium(
        chromium_path, served_api, client, worker, task_queue, simulator, inventory, settings):
    from playwright.async_api import async_playwright

    fleet = Fleet(simulator, inventory, settings)
    names = fleet.add({"a": ("m5.xlarge", 2, "us-east-1"), "b": ("m5.large", 1, "us-west-2"),
                       "c": ("m5.large", 2, "us-west-2")})
    waiting = fleet.bundle({"divide": "weight"}, stages=[{"name": "gated", "approval_required": True}])
    handle = await roll_out(client, task_queue, waiting)
    await wait_until(handle, lambda p: p.phase == "awaiting_approval", "waiting", progress_type=PolicyRolloutProgress)
    _, operator = create_token(inventory, name=f"browser-operator-{uuid.uuid4().hex[:6]}", role="operator",
                               environments=["staging"])
    _, viewer = create_token(inventory, name=f"browser-viewer-{uuid.uuid4().hex[:6]}", role="viewer",
                             environments=["staging"])
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    operation = policy_id(waiting.name)
    try:
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=chromium_path, headless=True,
                                                       args=["--no-sandbox", "--disable-gpu"])
            try:
                context = await browser.new_context(viewport={"width": 1600, "height": 1000})
                page = await context.new_page()
                await page.goto(f"{served_api}/ui?label=placement={fleet.tag}")
                assert "/ui/login" in page.url  # no session: the sign-in form
                await page.fill("input[name=token]", operator)
                await page.click("button[type=submit]")
                await page.wait_for_url(lambda url: url.startswith(f"{served_api}/ui?label=placement"))
                cookie = next(c for c in await context.cookies() if c["name"] == "regatta_session")
                assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
                rows = page.locator("table#fleet tbody tr")
                assert await rows.count() == 3
                await page.screenshot(path=str(ARTIFACTS / "fleet.png"), full_page=True)

                # Each click below loads a page: wait for it, not read the one it leaves.
                async with page.expect_navigation():  # ascending, then again for the dearest first
                    await page.click("th a[data-sort=cost]")
                async with page.expect_navigation():
                    await page.click("th a[data-sort=cost]")
                assert await rows.first.get_attribute("data-cluster") == names["a"]
                await page.select_option("select[name=region]", "us-west-2")
                async with page.expect_navigation():
                    await page.click("form.filters button[type=submit]")
                assert sorted([await r.get_attribute("data-cluster") for r in await rows.all()]) == sorted(
                    [names["b"], names["c"]])
                await page.fill("input[name=per_page]", "1")
                async with page.expect_navigation():
                    await page.click("form.filters button[type=submit]")
                assert await rows.count() == 1 and await page.locator("text=page 1 of 2").count() == 1
                async with page.expect_navigation():
                    await page.click("a[rel=next]")
                assert await rows.count() == 1 and await page.locator("text=page 2 of 2").count() == 1
                await page.screenshot(path=str(ARTIFACTS / "fleet-filtered.png"), full_page=True)

                shown = await rows.first.get_attribute("data-cluster")
                async with page.expect_navigation():
                    await page.click(f"a[href='/ui/clusters/{shown}']")
                assert await page.locator("h1").inner_text() == shown
                assert await page.locator("table#pools tbody tr").count() == 1
                assert await page.locator("table#bundles >> text=no bundle given to it yet").count() == 1
                await page.screenshot(path=str(ARTIFACTS / "cluster.png"), full_page=True)

                await page.goto(f"{served_api}/ui/operations")
                async with page.expect_navigation():
                    await page.click(f"table#running a[href='/ui/operations/{operation}']")
                assert await page.locator("#phase").inner_text() == "awaiting_approval"
                assert await page.locator("button[value=approve]").count() == 0  # an operator does not approve
                await page.fill("#controls form:has(button[value=pause]) input[name=reason]", "from the browser")
                await page.click("button[value=pause]")
                await page.wait_for_selector("text=pause: accepted")
                await page.screenshot(path=str(ARTIFACTS / "operation.png"), full_page=True)
                assert (await handle.query("progress", result_type=PolicyRolloutProgress)).paused is True

                looker = await (await browser.new_context()).new_page()
                await looker.goto(f"{served_api}/ui/login")
                await looker.fill("input[name=token]", viewer)
                await looker.click("button[type=submit]")
                await looker.goto(f"{served_api}/ui/operations/{operation}")
                assert await looker.locator("#controls").count() == 0  # what a viewer may not do is not offered
                await looker.screenshot(path=str(ARTIFACTS / "operation-viewer.png"), full_page=True)
            finally:
                await browser.close()
    finally:
        await handle.execute_update("abort", AbortInput(reason="browser test done", requested_by="test"))
    assert all((ARTIFACTS / f).stat().st_size > 0 for f in ("fleet.png", "cluster.png", "operation.png"))
    await asyncio.sleep(0)


async def test_the_api_docs_render_in_chromium_from_the_package_alone(chromium_path, served_api):
    """README promises nothing but Python and make: /docs must not need a CDN (it rendered blank without internet)."""
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=chromium_path, headless=True,
                                                   args=["--no-sandbox", "--disable-gpu"])
        try:
            page = await browser.new_page()
            elsewhere: list[str] = []
            page.on("request", lambda request: None if request.url.startswith(served_api) else elsewhere.append(request.url))
            answer = await page.goto(f"{served_api}/docs")
            assert answer is not None and answer.status == 200
            await page.wait_for_selector(".opblock-summary-path", timeout=30_000)  # Swagger UI drew the operations
            paths = await page.locator(".opblock-summary-path").all_inner_texts()
            assert any(p.replace("\u200b", "") == "/v1/operations" for p in paths), paths
            assert elsewhere == [], elsewhere  # nothing fetched from anywhere but the API itself
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            await page.screenshot(path=str(ARTIFACTS / "api-docs.png"))
            answer = await page.goto(f"{served_api}/redoc")  # ReDoc would fetch its logo from a CDN: not served
            assert answer is not None and answer.status == 404
        finally:
            await browser.close()


async def test_a_person_signs_in_through_the_identity_provider_in_chromium(chromium_path, served_api_signing_in,
                                                                           oidc_provider, inventory):
    """The API's address opened in a browser leads to the sign-in; the identity provider's form (another site:
    the API is opened as localhost, the provider is 127.0.0.1) sends the browser back, and the session that
    starts there is used on the next page, although its cookie is SameSite=Strict."""
    from playwright.async_api import async_playwright

    who = f"browser-{uuid.uuid4().hex[:6]}@corp.example"
    oidc_provider.user(who, groups=["sre"])
    api = served_api_signing_in.replace("127.0.0.1", "localhost")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=chromium_path, headless=True,
                                                   args=["--no-sandbox", "--disable-gpu"])
        try:
            context = await browser.new_context()
            page = await context.new_page()
            await page.goto(api)
            assert page.url.startswith(f"{api}/ui/login"), page.url  # not a JSON 404
            async with page.expect_navigation(url=lambda url: url.startswith(oidc_provider.url)):
                await page.click("text=Sign in with Test SSO")
            await page.get_by_placeholder("sub").fill(who)
            await page.get_by_role("button", name="Authorize").click()
            await page.wait_for_url(f"{api}/ui", timeout=30_000)
            assert who in await page.locator("header").inner_text()
            assert await page.locator("header >> text=operator").count() == 1
            await page.screenshot(path=str(ARTIFACTS / "signed-in-through-oidc.png"), full_page=True)
            cookies = {c["name"]: c for c in await context.cookies()}
            assert cookies["regatta_session"]["sameSite"] == "Strict" and "regatta_oidc" not in cookies
        finally:
            await browser.close()
    record = [r for r in inventory.audit() if r.operation == "access" and r.requested_by == who][-1]
    assert record.action == "sign in" and record.outcome == "succeeded"
