"""Who a person signed in through the identity provider is in Regatta (regatta/rules/sign_in.py), and the
sign-in file that says so (regatta/formats/sign_in_file.py): expectations written out by hand."""

from __future__ import annotations

import pytest

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


def test_the_name_comes_from_the_named_claim_then_sub_and_must_be_a_short_string():
    assert person_name({"email": "  ana@corp.example "}, "email") == "ana@corp.example"
    assert person_name({"email": 5, "sub": "0042"}, "email") == "0042"
    assert person_name({"email": "x" * 101}, "email") is None
    assert person_name({}, "email") is None


def test_refusals_say_what_an_admin_would_change():
    assert decide({"groups": ["sre"]}) == ("the identity provider's token names nobody: it has no email or sub of 1"
                                            " to 100 characters")
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
