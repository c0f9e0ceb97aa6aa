"""Kubernetes resource quantities ('250m', '2', '512Mi', '1.5Gi', '1e3'), read one way for everything Regatta compares
or adds up: placement's room, a twin's requests, a sweep's load, and drift (the API server's '1' for '1000m').

Pure: the grammar of the Kubernetes quantity reference (a signed decimal number, then a binary suffix Ki…Ei, a decimal
one m, k, M…E, or a decimal exponent), exact in Decimal. The simulator keeps its own arithmetic (regatta/sim).
"""

from __future__ import annotations

import math
import re
from decimal import Decimal, InvalidOperation
from typing import Any

_QUANTITY = re.compile(r"^([+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))(?:(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)|[eE]([+-]?[0-9]+))?$")
_SCALE = {None: Decimal(1), "m": Decimal("0.001"), "k": Decimal(10) ** 3, "M": Decimal(10) ** 6, "G": Decimal(10) ** 9,
          "T": Decimal(10) ** 12, "P": Decimal(10) ** 15, "E": Decimal(10) ** 18, "Ki": Decimal(2) ** 10,
          "Mi": Decimal(2) ** 20, "Gi": Decimal(2) ** 30, "Ti": Decimal(2) ** 40, "Pi": Decimal(2) ** 50,
          "Ei": Decimal(2) ** 60}


def read(value: Any) -> Decimal | None:
    """The quantity's value, or None when `value` is not one (a boolean is not)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return Decimal(str(value))
    if not isinstance(value, str) or not (found := _QUANTITY.match(value.strip())):
        return None
    try:
        number = Decimal(found[1])
    except InvalidOperation:
        return None
    return number * (Decimal(10) ** int(found[3]) if found[3] is not None else _SCALE[found[2]])


def quantity(value: str | int | float) -> Decimal:
    """The quantity's value; ValueError saying how one is written."""
    found = read(value)
    if found is None:
        raise ValueError(f"{value!r} is not a Kubernetes quantity (like 250m, 2, 512Mi, 4Gi)")
    return found


def millicores(value: str | int | float | None) -> int:
    """CPU in millicores, rounded up (as the scheduler counts a request); None or '' is none."""
    return math.ceil(quantity(value) * 1000) if value not in (None, "") else 0


def mebibytes(value: str | int | float | None) -> int:
    """Memory in MiB, rounded up; None or '' is none."""
    return math.ceil(quantity(value) / 2**20) if value not in (None, "") else 0
