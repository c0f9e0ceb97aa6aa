"""Where Regatta may send requests that an operator's input names: callback URLs, a drain
policy's owner webhook, a health check's Prometheus. A workflow input is typed by whoever can
start one, so without a check it could point the worker at the cloud's instance metadata service
(and its credentials) or at anything else on the worker's network.

By default every host is allowed except link-local addresses (169.254.0.0/16, fe80::/10) and the
clouds' metadata endpoints (169.254.169.254, fd00:ec2::254, 100.100.100.200,
metadata.google.internal and friends). `REGATTA_OUTBOUND_ALLOW` narrows it to a list: host names
(`hooks.example.com`), wildcards (`*.example.com`) and networks (`10.20.0.0/16`); an entry that
names a refused address explicitly allows it.

Pure: the CLI and the API check literal addresses before a start; the activities check again with
the addresses a name resolves to, just before they connect.
"""

from __future__ import annotations

import fnmatch
import ipaddress
from collections.abc import Iterable, Sequence
from urllib.parse import urlsplit

METADATA_HOSTS = frozenset({"metadata.google.internal", "metadata", "metadata.goog", "metadata.azure.com",
                            "instance-data", "instance-data.ec2.internal"})
METADATA_ADDRESSES = frozenset({ipaddress.ip_address(a) for a in ("169.254.169.254", "fd00:ec2::254", "100.100.100.200")})
LINK_LOCAL = (ipaddress.ip_network("169.254.0.0/16"), ipaddress.ip_network("fe80::/10"))


def parse_allow_list(text: str | None) -> tuple[str, ...]:
    """`REGATTA_OUTBOUND_ALLOW`: entries separated by commas or spaces; empty means the default."""
    return tuple(entry.strip().lower() for entry in (text or "").replace(",", " ").split() if entry.strip())


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        return None


def _allowed_by(entry: str, host: str, addresses: Sequence[ipaddress.IPv4Address | ipaddress.IPv6Address]) -> bool:
    if "/" in entry:
        try:
            network = ipaddress.ip_network(entry, strict=False)
        except ValueError:
            return False
        return bool(addresses) and all(address in network for address in addresses)
    if (entry_address := _address(entry)) is not None:
        return bool(addresses) and all(address == entry_address for address in addresses)
    return fnmatch.fnmatchcase(host, entry)


def _refused(host: str, addresses: Iterable[ipaddress.IPv4Address | ipaddress.IPv6Address]) -> str | None:
    if host in METADATA_HOSTS:
        return f"{host} is a cloud metadata service"
    for address in addresses:
        if address in METADATA_ADDRESSES:
            return f"{address} is a cloud metadata address"
        if any(address in network for network in LINK_LOCAL):
            return f"{address} is link-local"
    return None


def outbound_problem(url: str, *, allowed: Sequence[str] = (), resolved: Sequence[str] = (), what: str = "the URL") -> str | None:
    """Why Regatta must not send a request to `url`, or None. `resolved`: the addresses its host
    resolves to, where they are known (the activity knows them; a check before a start does not)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return f"{what} {url!r} is not an http(s) URL with a host"
    host = parts.hostname.lower()
    addresses = [a for a in (_address(host), *(_address(r) for r in resolved)) if a is not None]
    if allowed:
        if any(_allowed_by(entry, host, addresses) for entry in allowed):
            return None
        return (f"{what} {url!r}: {host} is not in REGATTA_OUTBOUND_ALLOW ({', '.join(allowed)}); add it there, or use"
                " a host that is")
    reason = _refused(host, addresses)
    if reason is not None:
        return (f"{what} {url!r} is refused: {reason}, which a workflow input must never reach. Name the receiver's"
                " own address, or allow it explicitly in REGATTA_OUTBOUND_ALLOW")
    return None


def outbound_urls(request: object) -> list[tuple[str, str]]:
    """Every URL an operation's input would have the worker call, with where it is in the input:
    `callback_url`, each drain policy's `owner_webhook`, each Prometheus check's `url` (with
    `$cluster` as a cluster name would fill it)."""
    found: list[tuple[str, str]] = []

    def walk(value: object, where: str) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                here = f"{where}.{key}" if where else str(key)
                if key in ("callback_url", "owner_webhook") and isinstance(item, str):
                    found.append((here, item))
                elif key == "prometheus" and isinstance(item, dict) and isinstance(item.get("url"), str):
                    found.append((f"{here}.url", item["url"].replace("$cluster", "cluster")))
                else:
                    walk(item, here)
        elif isinstance(value, list):
            for index, item in enumerate(value):
                walk(item, f"{where}[{index}]")

    dump = getattr(request, "model_dump", None)
    walk(dump(mode="json") if callable(dump) else request, "")
    return found
