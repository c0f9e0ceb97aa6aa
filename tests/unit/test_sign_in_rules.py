"""Who a person signed in through the identity provider is in Regatta (regatta/rules/sign_in.py), and the
sign-in file that says so (regatta/formats/sign_in_file.py): expectations written out by hand."""

from __future__ import annotations

import pytest

from regatta.api.identity_provider import discovery_problem
from regatta.formats.sign_in_file import SignInFileError, load_sign_in_file
from regatta.models.sign_in import GroupRole
from regatta.rules.sign_in import Grant, grant, groups_of, looks_like_jwt, person_name

ROLES = [GroupRole(group="platform-admins", role="admin", environments=["*"]),
         GroupRole(group="sre", role="operator", environments=["staging", "prod"]),
         GroupRole(group="engineering", role="viewer", environments=["staging"])]


def decide(claims):
    return grant(claims, name_claim="email", groups_claim="groups", roles=ROLES)


def test_the_first_rule_in_the_files_order_decides_not_the_order_of_the_tokens_groups():
    assert decide({"email": "ana@corp.example", "groups": ["engineering", "sre"]}) == Grant(
        name="ana@corp.example", role="operator", environments=("staging", "prod"), group="sre")
    assert decide({"email": "bo@corp.example", "groups": ["engineering", "platform-admins", "sre"]}).role == "admin"


def test_a_single_group_given_as_a_string_counts_and_other_values_do_not():
    assert groups_of({"groups": "sre"}, "groups") == ["sre"]
    assert groups_of({"groups": ["sre", 7, None, {"x": 1}]}, "groups") == ["sre"]
    assert groups_of({"groups": 7}, "groups") == []


def test_the_name_comes_from_the_named_claim_alone_and_must_be_a_short_string():
    assert person_name({"email": "  ana@corp.example "}, "email") == "ana@corp.example"
    # no falling back to sub: one person, one name, whichever token they bring (four eyes compares names)
    assert person_name({"email": 5, "sub": "0042"}, "email") is None
    assert person_name({"email": "x" * 101}, "email") is None
    assert person_name({}, "email") is None


def test_an_address_the_provider_says_is_not_verified_names_nobody():
    assert decide({"email": "ana@corp.example", "email_verified": False, "groups": ["sre"]}) == (
        "ana@corp.example signed in, but the identity provider says that address is not verified")
    assert decide({"email": "ana@corp.example", "email_verified": True, "groups": ["sre"]}).role == "operator"


def test_refusals_say_what_an_admin_would_change():
    assert decide({"sub": "0042", "groups": ["sre"]}) == (
        "the identity provider's token names nobody: it has no email claim of 1 to 100 characters (the sign-in file's"
        " name_claim)")
    assert decide({"email": "cy@corp.example"}) == (
        "cy@corp.example signed in, but the token lists no groups in its 'groups' claim; ask the identity provider's"
        " admins to send it, or an admin of Regatta to name the claim that holds them")
    assert decide({"email": "cy@corp.example", "groups": ["sales", "finance"]}) == (
        "cy@corp.example signed in, but none of their groups (finance, sales) has a role in Regatta; an admin adds one"
        " to the roles of the sign-in file (REGATTA_OIDC_FILE)")


def test_a_jwt_is_told_from_an_api_token_by_its_shape():
    assert looks_like_jwt("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln")
    assert not looks_like_jwt("rgt_abc.def.ghi")
    assert not looks_like_jwt("eyJhbGciOiJSUzI1NiJ9..c2ln")
    assert not looks_like_jwt("eyJhbGciOiJSUzI1NiJ9.eyJ9")


def test_an_issuer_is_https_or_on_this_machine_and_nothing_that_only_looks_like_it(tmp_path):
    path = tmp_path / "oidc.yaml"
    for issuer in ("http://localhost.evil.com", "http://127.0.0.1.nip.io", "http://localhost@evil.com",
                   "https://user@login.example.com", "ftp://login.example.com"):
        path.write_text(f"issuer: {issuer}\nclient_id: regatta\nroles: [{{group: g, role: viewer, environments: [dev]}}]\n")
        with pytest.raises(SignInFileError):
            load_sign_in_file(path)
    for issuer in ("https://login.example.com/realms/x", "http://127.0.0.1:9400", "http://localhost:8080"):
        path.write_text(f"issuer: {issuer}\nclient_id: regatta\nroles: [{{group: g, role: viewer, environments: [dev]}}]\n")
        assert load_sign_in_file(path).issuer == issuer


def test_a_discovery_document_must_name_its_issuer_and_https_endpoints():
    good = {"issuer": "https://login.example.com", "authorization_endpoint": "https://login.example.com/authorize",
            "token_endpoint": "https://login.example.com/token", "jwks_uri": "https://keys.example.com/jwks"}
    assert discovery_problem(good, "https://login.example.com") is None
    assert "names issuer" in discovery_problem({**good, "issuer": "https://evil.example"}, "https://login.example.com")
    assert "token_endpoint 'http://10.0.0.5/token', which is not https" in discovery_problem(
        {**good, "token_endpoint": "http://10.0.0.5/token"}, "https://login.example.com")
    assert "has no jwks_uri" in discovery_problem({k: v for k, v in good.items() if k != "jwks_uri"},
                                                  "https://login.example.com")


def test_the_sign_in_file_reports_problems_at_their_lines(tmp_path):
    path = tmp_path / "oidc.yaml"
    path.write_text("issuer: http://login.example.com\nclient_id: regatta\nscopes: [email]\nroles:\n"
                    "  - group: sre\n    role: boss\n    environments: [prod]\n")
    with pytest.raises(SignInFileError) as refused:
        load_sign_in_file(path)
    lines = str(refused.value).splitlines()
    assert any(line.startswith(f"{path}:1: issuer:") and "https://" in line for line in lines), lines
    assert any(line.startswith(f"{path}:3: scopes:") and "openid" in line for line in lines), lines
    assert any(line.startswith(f"{path}:6: roles.0.role:") for line in lines), lines


def test_the_example_sign_in_file_reads():
    provider = load_sign_in_file("examples/oidc.yaml")
    assert provider.accepted_audiences == ["regatta", "regatta-api"] and provider.roles[0].group == "platform-admins"
