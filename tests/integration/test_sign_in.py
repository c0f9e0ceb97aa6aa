"""People sign in through the company's identity provider: a real OpenID Connect provider on 127.0.0.1
(tests/conftest.py's `oidc_provider`), the API taking its ID tokens as bearer tokens and the fleet view
running the authorization code flow with PKCE. Groups map to roles by the sign-in file; a token for
another audience, an expired one, one signed by a key the provider rotated out, and a person whose
groups have no role are refused, and each refusal of a known person is an `access` record in the trail."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import subprocess
import time
import uuid
from dataclasses import replace

import httpx
import pytest

from regatta.api import identity_provider
from regatta.api.app import create_app
from tests.conftest import REGATTA
from tests.shared_http import http


@pytest.fixture
def api(oidc_provider, queue_settings, inventory, tmp_path, monkeypatch):
    monkeypatch.setenv("REGATTA_OIDC_CLIENT_SECRET", "regatta-client-secret")  # a confidential client, as most are
    app = create_app(replace(queue_settings, oidc_file=oidc_provider.sign_in_file(tmp_path)), inventory)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://regatta.test", timeout=60,
                             follow_redirects=False)


HOLD = {"until": "2099-01-01T00:00:00Z", "reason": "freeze"}


def person(tag: str) -> str:
    return f"{tag}-{uuid.uuid4().hex[:6]}@corp.example"


def access_records(inventory, who: str) -> list:
    return [r for r in inventory.audit() if r.operation == "access" and r.requested_by == who]


async def test_a_persons_id_token_is_their_role_on_the_api(api, oidc_provider, inventory, add_cluster):
    cluster = add_cluster()
    sre, engineer = person("sre"), person("eng")
    oidc_provider.user(sre, groups=["engineering", "sre"])  # the first rule they match in the file's order: sre
    oidc_provider.user(engineer, groups=["engineering"])
    as_sre = {"Authorization": f"Bearer {oidc_provider.id_token(sre)}"}
    as_engineer = {"Authorization": f"Bearer {oidc_provider.id_token(engineer)}"}

    listed = await api.get("/v1/clusters", headers=as_engineer)
    assert listed.status_code == 200, listed.text
    assert cluster in [c["name"] for c in listed.json()]
    refused = await api.post(f"/v1/clusters/{cluster}/hold", headers=as_engineer, json=HOLD)
    assert refused.status_code == 403 and f"token {engineer} is a viewer" in refused.json()["error"]
    held = await api.post(f"/v1/clusters/{cluster}/hold", headers=as_sre, json=HOLD)
    assert held.status_code == 201, held.text
    # the trail names the person, as it names a token
    assert any(r.requested_by == sre and r.action == "hold" and r.outcome == "held" for r in inventory.audit(cluster=cluster))
    assert any(r.requested_by == engineer and r.outcome == "refused" for r in inventory.audit(cluster=cluster))


async def test_tokens_for_another_audience_expired_or_with_no_mapped_group_are_refused_and_recorded(
        api, oidc_provider, inventory):
    wanderer, late, stranger = person("wanderer"), person("late"), person("stranger")
    for who in (wanderer, late):
        oidc_provider.user(who, groups=["sre"])
    oidc_provider.user(stranger, groups=["marketing", "sales"])

    other_app = await api.get("/v1/clusters", headers={
        "Authorization": f"Bearer {oidc_provider.id_token(wanderer, client_id='wiki')}"})
    assert other_app.status_code == 401 and "is for wiki, not for Regatta" in other_app.json()["error"]
    now = int(time.time())
    expired = oidc_provider.mint({"iss": oidc_provider.url, "aud": "regatta", "sub": late, "email": late,
                                  "groups": ["sre"], "iat": now - 7200, "exp": now - 3600})
    old = await api.get("/v1/clusters", headers={"Authorization": f"Bearer {expired}"})
    assert old.status_code == 401 and "expired 3600 s ago" in old.json()["error"].replace("3601", "3600")
    unmapped = await api.get("/v1/clusters", headers={"Authorization": f"Bearer {oidc_provider.id_token(stranger)}"})
    assert unmapped.status_code == 403
    assert "none of their groups (marketing, sales) has a role in Regatta" in unmapped.json()["error"]

    for who, words in ((wanderer, "not for Regatta"), (late, "expired"), (stranger, "has a role")):
        records = access_records(inventory, who)
        assert len(records) == 1 and records[0].outcome == "refused" and words in records[0].detail, records
    # a second refusal within the minute is not a second line (a script retrying cannot flood the trail)
    again = await api.get("/v1/clusters", headers={"Authorization": f"Bearer {expired}"})
    assert again.status_code == 401 and len(access_records(inventory, late)) == 1


async def test_forged_and_foreign_tokens_are_refused_without_a_trace_of_a_stranger(api, oidc_provider, inventory):
    who = person("forger")
    oidc_provider.user(who, groups=["platform-admins"])
    genuine = oidc_provider.id_token(who)
    header, claims, signature = genuine.split(".")
    # the same claims, made an admin's for another person: the signature no longer holds
    payload = base64.urlsafe_b64decode(claims + "=" * (-len(claims) % 4)).replace(who.encode(), b"admin@corp.example")
    forged = f"{header}.{base64.urlsafe_b64encode(payload).decode().rstrip('=')}.{signature}"
    answer = await api.get("/v1/clusters", headers={"Authorization": f"Bearer {forged}"})
    assert answer.status_code == 401 and "signature does not hold" in answer.json()["error"]
    # alg none, and an HMAC "signed" with a public value: never accepted
    for alg in ("none", "HS256"):
        head = base64.urlsafe_b64encode(f'{{"alg":"{alg}","typ":"JWT"}}'.encode()).decode().rstrip("=")
        sig = base64.urlsafe_b64encode(hashlib.sha256(b"x").digest()).decode().rstrip("=")
        answer = await api.get("/v1/clusters", headers={"Authorization": f"Bearer {head}.{claims}.{sig}"})
        assert answer.status_code == 401 and f"signed with '{alg}'" in answer.json()["error"], answer.text
    assert not [r for r in inventory.audit() if r.operation == "access" and r.requested_by in (who, "admin@corp.example")]


async def test_a_rotated_key_is_picked_up_and_the_old_one_stops_working(api, oidc_provider, monkeypatch):
    monkeypatch.setattr(identity_provider, "REFETCH_SECONDS", 1.0)
    who = person("rotation")
    oidc_provider.user(who, groups=["sre"])
    before = oidc_provider.id_token(who)
    assert (await api.get("/v1/clusters", headers={"Authorization": f"Bearer {before}"})).status_code == 200
    oidc_provider.rotate()
    after = oidc_provider.id_token(who)
    time.sleep(1.1)  # past the pause between two reads of the keys that an unknown key may cause
    fresh = await api.get("/v1/clusters", headers={"Authorization": f"Bearer {after}"})
    assert fresh.status_code == 200, fresh.text  # the new key was read without a restart
    stale = await api.get("/v1/clusters", headers={"Authorization": f"Bearer {before}"})
    # the provider's ID tokens name no key (no kid): an old one fails against the keys now published
    assert stale.status_code == 401 and "signature does not hold" in stale.json()["error"]


async def test_tokens_naming_unknown_keys_cannot_make_regatta_hammer_the_provider(api, oidc_provider):
    who = person("sprayer")
    oidc_provider.user(who, groups=["sre"])
    token = oidc_provider.id_token(who)
    assert (await api.get("/v1/clusters", headers={"Authorization": f"Bearer {token}"})).status_code == 200
    _, claims, signature = token.split(".")
    reads = len(oidc_provider.jwks_reads)
    for n in range(30):  # thirty key ids nobody published, one after another
        header = base64.urlsafe_b64encode(f'{{"alg":"RS256","kid":"made-up-{n}"}}'.encode()).decode().rstrip("=")
        answer = await api.get("/v1/clusters", headers={"Authorization": f"Bearer {header}.{claims}.{signature}"})
        assert answer.status_code == 401 and "does not publish" in answer.json()["error"]
    assert len(oidc_provider.jwks_reads) - reads <= 1  # at most one read in REFETCH_SECONDS


async def test_the_fleet_view_signs_a_person_in_with_the_authorization_code_flow_and_pkce(api, oidc_provider, inventory,
                                                                                          settings):
    who = person("viewer")
    oidc_provider.user(who, groups=["engineering"])
    # a browser opening the API's address lands on the sign-in, which offers the identity provider
    root = await api.get("/")
    assert root.status_code == 303 and root.headers["location"] == "/ui"
    fleet = await api.get("/ui")
    assert fleet.status_code == 303 and fleet.headers["location"].startswith("/ui/login")
    login = await api.get(fleet.headers["location"])
    assert login.status_code == 200 and "Sign in with Test SSO" in login.text
    start = re.search(r'href="(/ui/login/oidc\?[^"]+)"', login.text)[1].replace("&amp;", "&")

    going = await api.get(start)
    assert going.status_code == 303
    authorize = httpx.URL(going.headers["location"])
    assert str(authorize).startswith(f"{oidc_provider.url}/oauth2/authorize")
    asked = authorize.params
    assert asked["code_challenge_method"] == "S256" and len(asked["code_challenge"]) == 43
    assert asked["redirect_uri"] == "http://regatta.test/ui/login/oidc/callback"
    kept = going.headers["set-cookie"]
    assert "regatta_oidc=" in kept and "HttpOnly" in kept and "samesite=lax" in kept.lower()

    # the person signs in at the provider, which sends the browser back with a code
    signed = http.post(str(authorize), data={"sub": who}, timeout=10)
    assert signed.status_code == 302
    back = httpx.URL(signed.headers["location"])
    # a forged state (another browser's sign-in, or an attacker's) is refused, and nothing starts
    forged = await api.get("/ui/login/oidc/callback", params={"code": back.params["code"], "state": "not-yours"})
    assert forged.status_code == 403 and "did not start in this browser" in forged.text
    going = await api.get(start)  # the refusal ended that sign-in: start again
    authorize = httpx.URL(going.headers["location"])
    back = httpx.URL(http.post(str(authorize), data={"sub": who}, timeout=10).headers["location"])
    arrived = await api.get(f"{back.path}?{back.query.decode()}")
    assert arrived.status_code == 200 and "Signed in" in arrived.text, arrived.text
    assert 'http-equiv="refresh"' in arrived.text
    page = await api.get("/ui")
    assert page.status_code == 200 and who in page.text and "viewer" in page.text
    record = access_records(inventory, who)[-1]
    assert record.action == "sign in" and record.outcome == "succeeded" and "group engineering" in record.detail
    # a code is redeemed once: the same return again is refused by the provider
    replayed = await api.get(f"{back.path}?{back.query.decode()}")
    assert replayed.status_code == 403

    # `regatta audit list --kind access`: the sign-ins and refusals, nothing else
    listed = subprocess.run([REGATTA, "audit", "list", "--kind", "access", "--output", "json"], capture_output=True,
                            text=True, env={**os.environ, **settings.as_env()}, timeout=120)
    assert listed.returncode == 0, listed.stderr
    records = json.loads(listed.stdout)
    assert {r["operation"] for r in records} == {"access"}
    assert any(r["requested_by"] == who and r["action"] == "sign in" and r["outcome"] == "succeeded" for r in records)


async def test_a_person_with_no_mapped_group_is_turned_away_from_the_fleet_view(api, oidc_provider, inventory):
    who = person("outsider")
    oidc_provider.user(who, groups=["finance"])
    login = await api.get("/ui/login")
    start = re.search(r'href="(/ui/login/oidc\?[^"]+)"', login.text)[1].replace("&amp;", "&")
    authorize = httpx.URL((await api.get(start)).headers["location"])
    back = httpx.URL(http.post(str(authorize), data={"sub": who}, timeout=10).headers["location"])
    refused = await api.get(f"{back.path}?{back.query.decode()}")
    assert refused.status_code == 403 and "none of their groups (finance)" in refused.text
    assert (await api.get("/ui")).status_code == 303  # no session
    record = access_records(inventory, who)[-1]
    assert record.action == "sign in" and record.outcome == "refused"


async def test_a_provider_that_does_not_answer_is_a_503_that_names_it(oidc_provider, queue_settings, inventory, tmp_path):
    unreachable = oidc_provider.sign_in_file(tmp_path, issuer="http://127.0.0.1:9")  # nothing listens on port 9
    app = create_app(replace(queue_settings, oidc_file=unreachable), inventory)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://regatta.test") as api:
        token = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln"
        answer = await api.get("/v1/clusters", headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code == 503 and "identity provider cannot be reached" in answer.json()["error"]
        login = await api.get("/ui/login/oidc")
        assert login.status_code == 503 and "cannot be reached" in login.text


async def test_tokens_issued_to_another_client_or_by_another_issuer_are_refused_and_strangers_are_not_named(
        api, oidc_provider, inventory):
    now = int(time.time())
    base = {"iss": oidc_provider.url, "sub": "x", "groups": ["platform-admins"], "iat": now, "exp": now + 600}
    other_client = oidc_provider.mint({**base, "email": person("azp"), "aud": ["other", "regatta"], "azp": "other"})
    answer = await api.get("/v1/clusters", headers={"Authorization": f"Bearer {other_client}"})
    assert answer.status_code == 401 and "issued to client 'other'" in answer.json()["error"]
    unclear = oidc_provider.mint({**base, "email": person("aud"), "aud": ["other", "regatta"]})
    answer = await api.get("/v1/clusters", headers={"Authorization": f"Bearer {unclear}"})
    assert answer.status_code == 401 and "no authorized party" in answer.json()["error"]
    # a token for another issuer (one key signing for many tenants) names nobody in the trail, whatever it says
    ceo = person("ceo")
    foreign = oidc_provider.mint({**base, "iss": "https://login.other-tenant.example", "email": ceo, "aud": "regatta"})
    answer = await api.get("/v1/clusters", headers={"Authorization": f"Bearer {foreign}"})
    assert answer.status_code == 401 and "not 'http://127.0.0.1" in answer.json()["error"]
    assert access_records(inventory, ceo) == []
    unverified = oidc_provider.mint({**base, "email": person("unverified"), "email_verified": False, "aud": "regatta"})
    answer = await api.get("/v1/clusters", headers={"Authorization": f"Bearer {unverified}"})
    assert answer.status_code == 403 and "not verified" in answer.json()["error"]
    nameless = oidc_provider.mint({**base, "aud": "regatta"})  # a sub but no email: no falling back to sub
    answer = await api.get("/v1/clusters", headers={"Authorization": f"Bearer {nameless}"})
    assert answer.status_code == 403 and "names nobody" in answer.json()["error"]


async def sign_in_through_the_provider(api, oidc_provider, who: str) -> None:
    login = await api.get("/ui/login")
    start = re.search(r'href="(/ui/login/oidc\?[^"]+)"', login.text)[1].replace("&amp;", "&")
    authorize = httpx.URL((await api.get(start)).headers["location"])
    back = httpx.URL(http.post(str(authorize), data={"sub": who}, timeout=10).headers["location"])
    arrived = await api.get(f"{back.path}?{back.query.decode()}")
    assert arrived.status_code == 200, arrived.text


async def test_a_persons_session_follows_the_sign_in_file_and_an_admin_can_end_it(api, oidc_provider, settings):
    who = person("leaver")
    oidc_provider.user(who, groups=["sre"])
    await sign_in_through_the_provider(api, oidc_provider, who)
    page = await api.get("/ui")
    assert page.status_code == 200 and "operator" in page.text
    cookie = next(c for c in api.cookies.jar if c.name == "regatta_session")
    assert 3500 <= (cookie.expires or 0) - time.time() <= 3700  # the ID token's hour, not the 8 hours of a token's
    # the API restarted with a sign-in file in which sre is a viewer: the session's role follows at once
    app = api._transport.app
    config = app.state.identity.config
    app.state.identity.config = config.model_copy(update={"roles": [
        r.model_copy(update={"role": "viewer"}) if r.group == "sre" else r for r in config.roles]})
    page = await api.get("/ui")
    assert page.status_code == 200 and "(viewer, staging" in page.text
    # and with sre taken out of the file, the session ends
    app.state.identity.config = config.model_copy(update={"roles": [r for r in config.roles if r.group != "sre"]})
    assert (await api.get("/ui")).status_code == 303
    app.state.identity.config = config
    await sign_in_through_the_provider(api, oidc_provider, who)
    assert (await api.get("/ui")).status_code == 200
    # an admin ends a person's sessions by name (there is no API token of that name)
    ended = subprocess.run([REGATTA, "token", "revoke", who], capture_output=True, text=True,
                           env={**os.environ, **settings.as_env()}, timeout=120)
    assert ended.returncode == 0 and "1 fleet-view session(s) of" in ended.stdout, ended.stdout + ended.stderr
    assert (await api.get("/ui")).status_code == 303
    nobody = subprocess.run([REGATTA, "token", "revoke", person("nobody")], capture_output=True, text=True,
                            env={**os.environ, **settings.as_env()}, timeout=120)
    assert nobody.returncode != 0 and "no token named" in nobody.stderr


async def test_a_sign_in_cookie_this_api_did_not_write_is_refused_not_a_500(api):
    for planted in ("s.n.v.A", "s", "s..v.L3Vp"):
        api.cookies.set("regatta_oidc", planted, domain="regatta.test", path="/ui/login/oidc")
        answer = await api.get("/ui/login/oidc/callback", params={"code": "c", "state": "s"})
        assert answer.status_code == 403 and "did not start in this browser" in answer.text, (planted, answer.status_code)
        api.cookies.clear()
    # a well-formed one with a made-up code: the provider refuses the code, and that is what the page says
    api.cookies.set("regatta_oidc", "s.n.v.%%%", domain="regatta.test", path="/ui/login/oidc")
    answer = await api.get("/ui/login/oidc/callback", params={"code": "c", "state": "s"})
    assert answer.status_code == 401 and "refused the sign-in" in answer.text


async def test_a_failing_provider_is_asked_again_at_most_every_few_seconds_and_the_keys_held_stay_in_use(monkeypatch):
    """A provider whose key endpoint fails: twenty tokens naming unknown keys make one request to it, not twenty,
    and once the keys held are old, tokens they verify are still taken while the provider is down."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    from threading import Thread

    from joserfc import jwt
    from joserfc.jwk import KeySet, RSAKey

    from regatta.api.identity_provider import IdentityProvider, ProviderUnreachable, TokenRefused
    from regatta.models.sign_in import OidcProvider

    key = RSAKey.generate_key(2048, auto_kid=True)
    state = {"keys_fail": False, "key_reads": 0}

    class Provider(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            issuer = f"http://127.0.0.1:{self.server.server_port}"
            if self.path == "/.well-known/openid-configuration":
                body = json.dumps({"issuer": issuer, "authorization_endpoint": f"{issuer}/authorize",
                                   "token_endpoint": f"{issuer}/token", "jwks_uri": f"{issuer}/jwks",
                                   "id_token_signing_alg_values_supported": ["RS256"]}).encode()
            else:
                state["key_reads"] += 1
                if state["keys_fail"]:
                    self.send_response(500)
                    self.end_headers()
                    return
                body = json.dumps(KeySet([key]).as_dict(private=False)).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Provider)
    Thread(target=server.serve_forever, daemon=True).start()
    try:
        issuer = f"http://127.0.0.1:{server.server_port}"
        provider = IdentityProvider(OidcProvider.model_validate({
            "issuer": issuer, "client_id": "regatta",
            "roles": [{"group": "sre", "role": "operator", "environments": ["staging"]}]}))
        now = int(time.time())
        claims = {"iss": issuer, "aud": "regatta", "email": "ana@corp.example", "groups": ["sre"], "iat": now,
                  "exp": now + 600}
        good = jwt.encode({"alg": "RS256", "kid": key.kid}, claims, key)
        assert (await provider.principal(good)).role == "operator"
        assert state["key_reads"] == 1

        state["keys_fail"] = True
        monkeypatch.setattr(identity_provider, "KEYS_SECONDS", 0.0)  # the keys held are old from now on
        monkeypatch.setattr(identity_provider, "REFETCH_SECONDS", 5.0)
        provider._keys_tried_at = -100.0  # the pause since the last read is over
        assert (await provider.principal(good)).name == "ana@corp.example"  # read failed: the held keys verify it
        assert state["key_reads"] == 2
        stranger = RSAKey.generate_key(2048, auto_kid=True)
        for n in range(20):
            forged = jwt.encode({"alg": "RS256", "kid": f"unknown-{n}"}, claims, stranger)
            with pytest.raises(TokenRefused):
                await provider.principal(forged)
        assert state["key_reads"] == 2  # asked again no sooner than REFETCH_SECONDS after the failed read

        fresh = IdentityProvider(provider.config)  # a provider never read while down: a 503's reason, not a hang
        with pytest.raises(ProviderUnreachable, match="signing keys"):
            await fresh.principal(good)
        with pytest.raises(ProviderUnreachable, match="signing keys"):
            await fresh.principal(good)
        assert state["key_reads"] == 3
    finally:
        server.shutdown()
