"""Time-bound access's decisions (regatta/rules/access_grants.py) and the sealed box its kubeconfig travels in
(regatta/formats/sealed_box.py), with expectations written out by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from regatta.formats.sealed_box import SealError, new_recipient, open_sealed, seal
from regatta.rules import access_grants

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize("text, seconds", [("2h", 7200), ("90m", 5400), ("1h30m", 5400), ("45s", 45), ("24h", 86400),
                                           ("1H", 3600)])
def test_durations_read_as_people_write_them(text, seconds):
    assert access_grants.duration_seconds(text) == seconds


@pytest.mark.parametrize("text, words", [("", "is not a duration"), ("2 days", "is not a duration"), ("10", "is not a"),
                                         ("10s", "from 30 s to 24 h"), ("25h", "from 30 s to 24 h")])
def test_durations_that_do_not_fit_say_how_to_write_one(text, words):
    with pytest.raises(ValueError, match=words):
        access_grants.duration_seconds(text)


def test_production_and_edit_or_admin_anywhere_wait_for_a_second_person():
    assert access_grants.needs_approval("prod", "view") and access_grants.needs_approval("Production", "edit")
    assert access_grants.needs_approval("staging", "admin")
    # edit may impersonate any service account (another person's grant) and leave behind what outlives the grant
    assert access_grants.needs_approval("staging", "edit")
    assert not access_grants.needs_approval("dev", "view") and not access_grants.needs_approval("staging", "view")


def test_no_two_grants_share_an_account_however_long_their_clusters_name():
    long = "c" * 90
    first, second = (access_grants.account_name(f"access-{long}-1a2b3c4d"),
                     access_grants.account_name(f"access-{long}-5e6f7a8b"))
    assert first != second and len(first) == len(second) == len("regatta-grant-") + 24
    assert access_grants.account_name("access-x-1a2b3c4d") == access_grants.account_name("access-x-1a2b3c4d")


def test_taking_access_back_is_tried_again_sooner_then_every_ten_minutes():
    assert [access_grants.revocation_pause(n) for n in (1, 2, 3, 6, 7, 20)] == [10, 20, 40, 320, 600, 600]


def test_the_token_lives_as_long_as_the_grant_and_never_under_the_api_servers_floor():
    assert access_grants.token_seconds(NOW + timedelta(hours=2), NOW) == 7200
    assert access_grants.token_seconds(NOW + timedelta(seconds=3600.2), NOW) == 3601
    assert access_grants.token_seconds(NOW + timedelta(seconds=40), NOW) == 600


def test_a_granted_grant_past_its_end_is_overdue_and_nothing_else_is():
    past, future = NOW - timedelta(seconds=1), NOW + timedelta(minutes=5)
    assert access_grants.shown_state(phase="granted", expires_at=past, now=NOW) == "overdue"
    assert access_grants.shown_state(phase="granted", expires_at=future, now=NOW) == "granted"
    assert access_grants.shown_state(phase="expired", expires_at=past, now=NOW) == "expired"
    assert access_grants.shown_state(phase="awaiting_approval", expires_at=None, now=NOW) == "awaiting_approval"


def test_a_sealed_kubeconfig_opens_with_its_recipients_key_alone():
    private, public = new_recipient()
    sealed = seal(b"apiVersion: v1", public)
    assert open_sealed(private, *sealed) == b"apiVersion: v1"
    someone_else, _ = new_recipient()
    with pytest.raises(SealError, match="does not open"):
        open_sealed(someone_else, *sealed)
    ephemeral, nonce, ciphertext = sealed
    tampered = ciphertext[:-4] + ("AAAA" if not ciphertext.endswith("AAAA") else "BBBB")
    with pytest.raises(SealError):
        open_sealed(private, ephemeral, nonce, tampered)
    with pytest.raises(SealError, match="not an X25519 public key"):
        seal(b"x", "c2hvcnQ=")
    import base64

    with pytest.raises(SealError, match="low-order point"):  # all zeros: every shared secret would be zero
        seal(b"x", base64.b64encode(bytes(32)).decode())


def test_a_grant_held_at_a_moment_is_one_granted_before_it_and_not_yet_taken_back():
    granted, ended = NOW - timedelta(hours=2), NOW - timedelta(hours=1)
    assert access_grants.held_at(granted_at=granted, revoked_at=ended, moment=NOW - timedelta(minutes=90))
    assert not access_grants.held_at(granted_at=granted, revoked_at=ended, moment=ended)
    assert not access_grants.held_at(granted_at=granted, revoked_at=ended, moment=granted - timedelta(seconds=1))
    assert access_grants.held_at(granted_at=granted, revoked_at=None, moment=NOW)  # not taken back yet: still held
    assert not access_grants.held_at(granted_at=None, revoked_at=None, moment=NOW)  # never granted
