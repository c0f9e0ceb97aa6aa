"""The data tables kept in the repository, dated: the price list (`prices.yaml`, overridable by
the file REGATTA_PRICE_FILE names), the clouds' support calendars (`support_dates.yaml`) and the
Kubernetes API removals per release (`api_removals.yaml`).

Called by `regatta clusters list`, the API's /metrics and the fleet view.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from regatta.models.cost import PriceList, SupportCalendar
from regatta.models.readiness import ApiRemovalTable

HERE = Path(__file__).parent


class FleetDataError(ValueError):
    """A price file that cannot be read or does not fit; says which and what to fix."""


def _read(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text())
    except OSError as error:
        raise FleetDataError(f"{path}: cannot be read: {error.strerror}") from None
    except yaml.YAMLError as error:
        raise FleetDataError(f"{path}: not YAML: {error}") from None


def _merged(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        merged[key] = _merged(merged[key], value) if isinstance(value, dict) and isinstance(merged.get(key), dict) else value
    return merged


def price_list(override: str | None = None) -> PriceList:
    """The shipped price list, with the entries of `override` (default: $REGATTA_PRICE_FILE) in place of its own."""
    override = override if override is not None else os.environ.get("REGATTA_PRICE_FILE") or None
    return _price_list(override)


@functools.lru_cache(maxsize=8)
def _price_list(override: str | None) -> PriceList:
    data = _read(HERE / "prices.yaml")
    root = None
    if override:
        from regatta.formats.yaml_lines import compose_limited

        theirs = _read(Path(override))
        if not isinstance(theirs, dict):
            raise FleetDataError(f"{override}:1: give a mapping like prices.yaml (as_of, clouds: {{eks: {{nodes: ...}}}})")
        root = compose_limited(Path(override).read_text())[0]
        data = _merged(data, theirs)
    try:
        return PriceList.model_validate(data)
    except ValidationError as error:
        from regatta.formats.yaml_lines import line_of, yaml_trap

        # the problems are the file's own (the shipped list holds none): each at its line in it
        raise FleetDataError("\n".join(f"{override or 'prices.yaml'}:{line_of(root, e['loc'])}:"
                                        f" {'.'.join(map(str, e['loc']))}: {e['msg']}{yaml_trap(e)}"
                                        for e in error.errors())) from None


@functools.lru_cache(maxsize=1)
def support_calendar() -> SupportCalendar:
    return SupportCalendar.model_validate(_read(HERE / "support_dates.yaml"))


@functools.lru_cache(maxsize=1)
def api_removals() -> ApiRemovalTable:
    """The Kubernetes API removals per release that ship with Regatta (`api_removals.yaml`, dated)."""
    return ApiRemovalTable.model_validate(_read(HERE / "api_removals.yaml"))
