"""The names nearest one that is not known: what a refusal suggests for a misspelt cluster, bundle, environment or
operation ("eks-prod-usee1" → "eks-prod-use1"), instead of the first few names in alphabetical order."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def nearest(name: str, known: Iterable[str], *, most: int = 3) -> list[str]:
    """Up to `most` known names like `name`, the likest first (difflib's ratio of at least 0.6); [] when none is."""
    return difflib.get_close_matches(name, list(known), n=most, cutoff=0.6)


def known_names_hint(name: str, known: list[str], *, what: str) -> str:
    """'; did you mean A or B?' for names like it; else '; known <what>s include ...' (the first eight); else that
    there are none."""
    if like := nearest(name, known):
        return f"; did you mean {' or '.join(like)}?"
    if known:
        return f"; known {what}s include {', '.join(known[:8])}" + (f" and {len(known) - 8} more" if len(known) > 8 else "")
    return f"; there are no {what}s yet"
