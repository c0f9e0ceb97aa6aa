"""What the inventory refuses, each with what to do instead."""

from __future__ import annotations

from regatta.rules import suggestions


class UnknownCluster(LookupError):
    def __init__(self, name: str, known: list[str]):
        hint = suggestions.known_names_hint(name, known, what="cluster") if known else "; the inventory is empty"
        super().__init__(f"cluster {name!r} is not in the inventory{hint}. Run `regatta clusters list` to see them")
        self.name = name


class DrPairError(ValueError):
    """A pair that cannot be declared, or a cluster that is in no pair."""


class HoldError(ValueError):
    """A hold that cannot be set or released as asked."""


class TokenError(ValueError):
    """A token that cannot be created or revoked as asked."""
