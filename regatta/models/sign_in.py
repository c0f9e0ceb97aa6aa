"""Signing in through the company's identity provider (OpenID Connect): the provider Regatta trusts,
and how a person's groups become a Regatta role and the environments it covers (the file named by
REGATTA_OIDC_FILE; see examples/oidc.yaml)."""

from __future__ import annotations

from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator

from regatta.models.base import Model

LOCAL_HOSTS = ("127.0.0.1", "::1", "localhost")


class GroupRole(Model):
    """A group (a value of the groups claim) and the role its members get, in these environments."""

    group: str = Field(min_length=1, max_length=200)
    role: Literal["viewer", "operator", "approver", "admin"]
    environments: list[str] = Field(min_length=1, description="environments the role covers; '*' for every one")

    @field_validator("environments")
    @classmethod
    def _named(cls, environments: list[str]) -> list[str]:
        if any(not e.strip() for e in environments):
            raise ValueError("an environment is empty: name each one, or '*' for every one")
        return [e.strip() for e in environments]


class OidcProvider(Model):
    """The identity provider people sign in with, for the fleet view (authorization code with PKCE) and the API
    (its ID tokens, or JWT access tokens for `audiences`, as bearer tokens)."""

    issuer: str = Field(description="the provider's issuer URL; its /.well-known/openid-configuration is read")
    client_id: str = Field(min_length=1, description="Regatta's client at the provider")
    display_name: str = Field(default="your company's identity provider", max_length=80)
    audiences: list[str] = Field(default_factory=list,
                                 description="what a bearer token's `aud` may name; the client id always may")
    authorized_parties: list[str] = Field(default_factory=list,
                                          description="clients a token may have been issued to (its `azp`), besides"
                                                      " the client id: the CLI's client, for JWT access tokens")
    scopes: list[str] = Field(default_factory=lambda: ["openid", "email", "profile"])
    name_claim: str = Field(default="email", description="the claim that names the person in Regatta's trail; a"
                                                          " token without it is refused (an `email` with"
                                                          " `email_verified: false` too)")
    groups_claim: str = Field(default="groups", description="the claim that lists the person's groups")
    roles: list[GroupRole] = Field(min_length=1, description="in order: the first group the person has decides")
    redirect_url: str | None = Field(default=None, description="this API's callback as the provider knows it,"
                                                               " https://regatta.example/ui/login/oidc/callback;"
                                                               " unset: from the address the browser used")
    leeway_seconds: int = Field(default=30, ge=0, le=300, description="clock skew allowed on exp, nbf and iat")

    @field_validator("issuer")
    @classmethod
    def _url(cls, issuer: str) -> str:
        parts = urlsplit(issuer)
        local = (parts.hostname or "").lower() in LOCAL_HOSTS
        if parts.scheme != "https" and not (parts.scheme == "http" and local):
            raise ValueError("the issuer must be an https:// URL (http only for a provider on this machine: 127.0.0.1,"
                             " ::1 or localhost)")
        if not parts.hostname or parts.username is not None or parts.password is not None or parts.query or parts.fragment:
            raise ValueError("the issuer is a URL with a host and no user, query or fragment")
        return issuer.rstrip("/")

    @field_validator("scopes")
    @classmethod
    def _openid(cls, scopes: list[str]) -> list[str]:
        if "openid" not in scopes:
            raise ValueError("the scopes must include openid")
        return scopes

    @property
    def accepted_audiences(self) -> list[str]:
        return [self.client_id, *(a for a in self.audiences if a != self.client_id)]

    @property
    def accepted_parties(self) -> list[str]:
        return [self.client_id, *(a for a in self.authorized_parties if a != self.client_id)]
