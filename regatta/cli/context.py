"""Where a command finds the fleet: the inventory, the fleet's clock, the HTTP API (when
REGATTA_API_URL is set the CLI acts through it as REGATTA_TOKEN), and the Temporal UI's address.
"""

from __future__ import annotations

from typing import Any

from regatta.cli.exits import Refused, Unreachable
from regatta.settings import Settings


def open_inventory():
    from regatta.inventory import Inventory
    from regatta.inventory.audit_files import AuditKeyError

    settings = Settings.from_env()
    try:
        return Inventory(settings.database_url, audit_keys=settings.audit_keys())
    except AuditKeyError as error:
        raise Refused(str(error)) from None
    except Exception as error:
        raise Unreachable(f"cannot open the inventory at {settings.database_url}: {error}") from error


def fleet_now():
    """The fleet's calendar time: the simulator's clock for a simulated fleet, else the wall clock."""
    from regatta.fleet_clock import read_fleet_clock

    try:
        return read_fleet_clock(Settings.from_env().sim_url).now
    except Exception as error:
        raise Unreachable(f"cannot read the fleet's clock from the simulator: {error}") from error


def ui_url(operation_id: str) -> str:
    settings = Settings.from_env()
    return f"{settings.temporal_ui}/namespaces/{settings.namespace}/workflows/{operation_id}"


def api_client() -> Any:
    """The HTTP API client when REGATTA_API_URL is set (the CLI then acts as REGATTA_TOKEN), else None."""
    settings = Settings.from_env()
    if not settings.api_url:
        return None
    from regatta.api.client import ApiClient

    return ApiClient(settings.api_url, settings.api_token)
