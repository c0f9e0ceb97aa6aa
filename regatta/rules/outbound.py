"""Where Regatta may send requests that an operator's input names: callback URLs, a drain
policy's owner webhook, a health check's Prometheus, a bundle's git source. A workflow input is typed
by whoever can start one, so without a check it could point the worker at the cloud's instance
metadata service (and its credentials) or at anything else on the worker's network.

The one policy (DESIGN rule 13):
- never, whatever REGATTA_OUTBOUND_ALLOW says: the clouds' metadata services (169.254.169.254,
  fd00:ec2::254, 100.100.100.200, metadata.google.internal and friends), link-local addresses
  (169.254.0.0/16, fe80::/10), unspecified, multicast and broadcast addresses;
- an IPv6 address that carries an IPv4 one (IPv4-mapped `::ffff:a.b.c.d`, IPv4-compatible, NAT64
  `64:ff9b::/96` and `64:ff9b:1::/48`, 6to4, Teredo) is judged as that IPv4 address too;
- loopback, private and shared (CGNAT) ranges only where private addresses are allowed
  (REGATTA_OUTBOUND_PRIVATE; the production deployment turns them off) or an allow-list entry names
  that network or address;
- with REGATTA_OUTBOUND_ALLOW set, only what it names: host names (`hooks.example.com`), wildcards
  (`*.example.com`) and networks (`10.20.0.0/16`).

Pure: the CLI and the API check literal addresses before a start; the connection itself is made by
regatta/outbound_connections.py to the address it checked, resolved once.
"""

from __future__ import annotations

import fnmatch
import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

Address = ipaddress.IPv4Address | ipaddress.IPv6Address

METADATA_HOSTS = frozenset({"metadata.google.internal", "metadata", "metadata.goog", "metadata.azure.com",
                            "instance-data", "instance-data.ec2.internal"})
METADATA_ADDRESSES = frozenset({ipaddress.ip_address(a) for a in ("169.254.169.254", "fd00:ec2::254", "100.100.100.200")})
LINK_LOCAL = (ipaddress.ip_network("169.254.0.0/16"), ipaddress.ip_network("fe80::/10"))
NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
SHARED = ipaddress.ip_network("100.64.0.0/10")  # carrier-grade NAT: a provider's inside, never the internet


@dataclass(frozen=True)
class OutboundRules:
    """An installation's outbound settings: REGATTA_OUTBOUND_ALLOW and REGATTA_OUTBOUND_PRIVATE."""

    allowed: tuple[str, ...] = ()
    private_allowed: bool = True

    def problem(self, url: str, *, resolved: Sequence[str] = (), what: str = "the URL") -> str | None:
        return outbound_problem(url, allowed=self.allowed, resolved=resolved, what=what, private_allowed=self.private_allowed)


def parse_allow_list(text: str | None) -> tuple[str, ...]:
    """`REGATTA_OUTBOUND_ALLOW`: entries separated by commas or spaces; empty means the default."""
    return tuple(entry.strip().lower() for entry in (text or "").replace(",", " ").split() if entry.strip())


def _address(text: str) -> Address | None:
    try:
        return ipaddress.ip_address(text.strip("[]").split("%", 1)[0])
    except ValueError:
        return None


def forms(address: Address) -> list[Address]:
    """The address and every IPv4 address an IPv6 one carries, each judged on its own."""
    found: list[Address] = [address]
    if isinstance(address, ipaddress.IPv6Address):
        embedded = [address.ipv4_mapped, address.sixtofour, *(address.teredo or ())]
        value = int(address)
        if any(address in network for network in NAT64) or (value >> 32 == 0 and value > 1):  # NAT64, IPv4-compatible
            embedded.append(ipaddress.IPv4Address(value & 0xFFFFFFFF))
        found += [a for a in embedded if a is not None]
    return found


def _never(host: str, addresses: Iterable[Address]) -> str | None:
    """What no allow list and no setting may open."""
    if host in METADATA_HOSTS:
        return f"{host} is a cloud metadata service"
    for address in addresses:
        if address in METADATA_ADDRESSES:
            return f"{address} is a cloud metadata address"
        if any(address in network for network in LINK_LOCAL):
            return f"{address} is link-local"
        if address.is_unspecified or address.is_multicast or address == ipaddress.IPv4Address("255.255.255.255"):
            return f"{address} is not a host's address"
    return None


def _inside(address: Address) -> bool:
    """Loopback, private, shared or reserved: the inside of the network Regatta runs in. An IPv6 address
    carrying an IPv4 one is judged by that IPv4 address (its own prefix is "reserved" to Python)."""
    if len(forms(address)) > 1:
        return False
    return address.is_loopback or address.is_private or address.is_reserved or address in SHARED


def _names(entry: str, address: Address) -> bool:
    """Whether an allow-list entry names this address (a network holding it, or the address itself)."""
    if "/" in entry:
        try:
            return address in ipaddress.ip_network(entry, strict=False)
        except ValueError:
            return False
    return _address(entry) == address


def _allowed_by(entry: str, host: str, addresses: Sequence[Address]) -> bool:
    if "/" in entry or _address(entry) is not None:
        return bool(addresses) and all(any(_names(entry, form) for form in forms(a)) for a in addresses)
    return fnmatch.fnmatchcase(host, entry)


def outbound_problem(url: str, *, allowed: Sequence[str] = (), resolved: Sequence[str] = (), what: str = "the URL",
                     private_allowed: bool = True) -> str | None:
    """Why Regatta must not send a request to `url`, or None. `resolved`: the addresses its host
    resolves to, where they are known (the connection knows them; a check before a start does not).
    `private_allowed`: whether loopback and private ranges may be reached without an allow-list entry."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return f"{what} {url!r} is not an http(s) URL with a host"
    try:
        parts.port  # noqa: B018 - urllib checks the port when it is read
    except ValueError:
        return f"{what} {url!r} has no valid port (1-65535)"
    if not parts.hostname.isascii():  # what is judged must be what is connected to: a client may spell it otherwise
        return f"{what} {url!r}: give the host in its ASCII (punycode, xn--) form"
    if parts.username is not None or parts.password is not None:
        return f"{what} {url!r} carries credentials in the URL; Regatta signs what it sends instead"
    host = parts.hostname.lower().rstrip(".")  # `metadata.google.internal.` is the same host
    addresses = [a for a in (_address(host), *(_address(r) for r in resolved)) if a is not None]
    every_form = [form for address in addresses for form in forms(address)]
    never = _never(host, every_form)
    if never is not None:
        return (f"{what} {url!r} is refused: {never}, which Regatta never calls whatever REGATTA_OUTBOUND_ALLOW says."
                " Name the receiver's own address")
    if allowed and not any(_allowed_by(entry, host, addresses) for entry in allowed):
        return (f"{what} {url!r}: {host} is not in REGATTA_OUTBOUND_ALLOW ({', '.join(allowed)}); add it there, or use"
                " a host that is")
    if not private_allowed:
        inside = [form for form in every_form if _inside(form) and not any(_names(e, form) for e in allowed)]
        if inside:
            return (f"{what} {url!r} is refused: {inside[0]} is a loopback or private address, which this installation"
                    " does not call (REGATTA_OUTBOUND_PRIVATE=deny); name its network in REGATTA_OUTBOUND_ALLOW to allow it")
    return None


def outbound_urls(request: object) -> list[tuple[str, str]]:
    """Every URL an operation's input would have the worker call, with where it is in the input:
    `callback_url`, each drain policy's `owner_webhook`, each upgrade hook's webhook `url`, each Prometheus check's `url` (with
    `$cluster` as a cluster name would fill it)."""
    found: list[tuple[str, str]] = []

    def walk(value: object, where: str) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                here = f"{where}.{key}" if where else str(key)
                if key in ("callback_url", "owner_webhook") and isinstance(item, str):
                    found.append((here, item))
                elif key in ("prometheus", "webhook") and isinstance(item, dict) and isinstance(item.get("url"), str):
                    found.append((f"{here}.url", item["url"].replace("$cluster", "cluster")))
                else:
                    walk(item, here)
        elif isinstance(value, list):
            for index, item in enumerate(value):
                walk(item, f"{where}[{index}]")

    dump = getattr(request, "model_dump", None)
    walk(dump(mode="json") if callable(dump) else request, "")
    return found
