"""Reading the sign-in file (REGATTA_OIDC_FILE): the identity provider and the roles its groups get,
every problem at the file's line that holds it (see examples/oidc.yaml)."""

from __future__ import annotations

from pathlib import Path

from regatta.formats.yaml_lines import read_model
from regatta.models.sign_in import OidcProvider


class SignInFileError(ValueError):
    pass


def load_sign_in_file(path: str | Path) -> OidcProvider:
    provider, _ = read_model(Path(path), OidcProvider, what="sign-in file", error=SignInFileError,
                             shape="one mapping with issuer, client_id and roles (see examples/oidc.yaml)")
    return provider
