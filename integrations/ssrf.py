"""Where a webhook may be sent: the SSRF guard.

A URL is refused unless it is ``http`` or ``https``, carries no credentials, and every
address its host resolves to is a public one, not loopback, private (RFC 1918, unique
local), link-local (the cloud metadata endpoints among them), carrier-grade NAT,
multicast, reserved or unspecified, unless the host (or the address, or a network
holding it) is on ``LOOPGATE_WEBHOOK_ALLOWED_HOSTS``. It is checked when the webhook is
registered and again before every delivery, and the delivery connects to the address
that was checked (``Target.address``), so a name that resolves to something else the
second time (DNS rebinding) cannot reach an internal service.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Not covered by ``is_global`` in every Python version, or worth naming explicitly.
BLOCKED_NETWORKS = tuple(
    ipaddress.ip_network(net)
    for net in (
        "0.0.0.0/8",
        "10.0.0.0/8",
        "100.64.0.0/10",
        "127.0.0.0/8",
        "169.254.0.0/16",  # link-local, 169.254.169.254 is the metadata endpoint
        "172.16.0.0/12",
        "192.0.0.0/24",
        "192.168.0.0/16",
        "198.18.0.0/15",
        "224.0.0.0/4",
        "240.0.0.0/4",
        "::/128",
        "::1/128",
        "fc00::/7",
        "fe80::/10",
        "ff00::/8",
        "fd00:ec2::254/128",
    )
)


class UrlRefused(Exception):
    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str
    port: int
    path: str
    address: str

    @property
    def host_header(self) -> str:
        default = 443 if self.scheme == "https" else 80
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == default else f"{host}:{self.port}"


Resolver = Callable[[str, int], list[str]]


def resolve(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (TCP)."""
    try:
        infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError) as exc:
        raise UrlRefused(f"url: host {host!r} does not resolve ({exc})") from None
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def address_blocked(address: IPAddress) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if any(address in net for net in BLOCKED_NETWORKS if net.version == address.version):
        return True
    return not address.is_global or address.is_multicast


def host_allowed(host: str, address: IPAddress, allowed_hosts: Iterable[str]) -> bool:
    for entry in allowed_hosts:
        entry = entry.strip()
        if not entry:
            continue
        if entry.lower() == host.lower():
            return True
        try:
            network = ipaddress.ip_network(entry, strict=False)
        except ValueError:
            continue
        if address.version == network.version and address in network:
            return True
    return False


def url_parse(url: str) -> tuple[str, str, int, str]:
    """The syntax checks: (scheme, host, port, path with query). Raises UrlRefused."""
    if not isinstance(url, str) or not url:
        raise UrlRefused("url: required")
    if any(ord(char) < 33 or ord(char) == 127 for char in url):
        raise UrlRefused("url: must not contain spaces or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UrlRefused(f"url: not a valid URL ({exc})") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise UrlRefused("url: only http and https URLs are allowed")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise UrlRefused("url: must not carry credentials (user:password@)")
    host = parts.hostname
    if not host:
        raise UrlRefused("url: has no host")
    if parts.fragment:
        raise UrlRefused("url: must not have a fragment (#...)")
    port = port or (443 if scheme == "https" else 80)
    if port == 0:
        raise UrlRefused("url: port 0 is not a port")
    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"
    return scheme, host, port, path


def url_check(
    url: str, *, allowed_hosts: Iterable[str], resolver: Resolver | None = None
) -> Target:
    """The address to connect to for ``url``, if every address of its host may be reached."""
    scheme, host, port, path = url_parse(url)
    allowed = list(allowed_hosts)
    try:
        addresses = [str(ipaddress.ip_address(host))]
    except ValueError:
        addresses = (resolver or resolve)(host, port)
    if not addresses:
        raise UrlRefused(f"url: host {host!r} does not resolve")
    for raw in addresses:
        address = ipaddress.ip_address(raw.split("%", 1)[0])
        if address_blocked(address) and not host_allowed(host, address, allowed):
            raise UrlRefused(
                f"url: {host!r} resolves to {address}, a loopback, private, link-local or "
                "reserved address; only public addresses may receive webhooks "
                "(unless listed in LOOPGATE_WEBHOOK_ALLOWED_HOSTS)"
            )
    return Target(scheme=scheme, host=host, port=port, path=path, address=addresses[0])
