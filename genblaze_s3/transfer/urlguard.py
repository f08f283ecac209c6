"""SSRF guard: pure URL validation and address checks (no I/O but the one resolution).

Why hand-written rather than ``requests-hardened``: we need, in one place, (1) to
resolve once and *connect to the checked address* (pinning, so DNS rebinding
cannot swap in 127.0.0.1 between check and connect), (2) to re-check every
redirect hop ourselves, and (3) a per-host allow-list for tests. The pinning is
done by :mod:`genblaze_s3.transfer.fetch` (URL rewritten to the IP, Host header
and TLS SNI/cert-name kept); this module decides *whether* and *where*.

Blocked: loopback, private (RFC 1918, ULA fc00::/7), shared 100.64/10,
link-local (incl. 169.254.169.254), cloud metadata fd00:ec2::254, multicast,
reserved, unspecified, and the same hidden in IPv4-mapped (::ffff:a.b.c.d),
NAT64 (64:ff9b::/96), 6to4 and Teredo forms; legacy IPv4 spellings (decimal,
octal, hex, short ``127.1``) are canonicalised with ``inet_aton`` first.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from dataclasses import dataclass

from genblaze_s3.transfer.config import FetchPolicy
from genblaze_s3.transfer.errors import SourceDNSFailed, URLBlocked
from genblaze_s3.transfer.urls import IPAddress, parse_ip_literal, parse_web_url, redact

__all__ = [
    "Resolver",
    "Target",
    "is_blocked_address",
    "parse_ip_literal",
    "redact",
    "resolve_target",
    "system_resolver",
    "validate_url",
]

Resolver = Callable[[str, int], list[str]]

_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")
_METADATA = frozenset(
    {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}
)


@dataclass(frozen=True)
class Target:
    """A validated URL split into what the pinned connection needs."""

    url: str
    scheme: str
    host: str  # hostname as written (lowercase, no brackets, no trailing dot)
    port: int
    path: str  # path + query, never empty
    literal_ip: IPAddress | None  # set when the host is an IP literal (any spelling)

    @property
    def host_header(self) -> str:
        h = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.scheme == "https" else 80
        return h if self.port == default else f"{h}:{self.port}"


def _embedded_v4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip in _NAT64 or ip in _NAT64_LOCAL:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    # IPv4-compatible (deprecated) ::a.b.c.d
    if int(ip) >> 32 == 0 and int(ip) > 1:
        return ipaddress.IPv4Address(int(ip))
    return None


def is_blocked_address(ip: IPAddress) -> bool:
    """True for any address a server-side fetch must never reach."""
    if ip in _METADATA:
        return True
    if isinstance(ip, ipaddress.IPv6Address):
        inner = _embedded_v4(ip)
        if inner is not None and is_blocked_address(inner):
            return True
        if ip in _NAT64 or ip in _NAT64_LOCAL:
            return inner is None  # a public v4 behind NAT64 is a real public host
    return (
        not ip.is_global
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_private
    )


def validate_url(url: str, policy: FetchPolicy, *, previous: Target | None = None) -> Target:
    """Parse a URL (:func:`transfer.urls.parse_web_url`) and check it against the policy.

    Raises InvalidURL (shape) or URLBlocked (policy). ``previous`` is the hop that
    redirected here: an https->http downgrade is refused even when plain http is
    allowed.
    """
    parsed = parse_web_url(url, max_length=policy.max_url_length)
    if parsed.scheme == "http" and not policy.allow_http:
        raise URLBlocked("plain http is not allowed (https only)")
    if previous is not None and previous.scheme == "https" and parsed.scheme == "http":
        raise URLBlocked("redirect from https to http refused")
    host = parsed.host
    if host not in policy.allow_private_hosts:
        if host == "localhost" or host.endswith(".localhost"):
            raise URLBlocked("localhost names are refused")
        if parsed.literal_ip is not None and is_blocked_address(parsed.literal_ip):
            raise URLBlocked("the URL's address is private, loopback or reserved")
    return Target(
        url=url,
        scheme=parsed.scheme,
        host=str(parsed.literal_ip) if parsed.literal_ip is not None else host,
        port=parsed.port,
        path=parsed.target,
        literal_ip=parsed.literal_ip,
    )


def system_resolver(host: str, port: int) -> list[str]:
    """All addresses getaddrinfo gives for host (TCP)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def resolve_target(target: Target, policy: FetchPolicy, resolver: Resolver | None = None) -> str:
    """Resolve once and return the address to connect to; refuse if ANY answer is blocked.

    Refusing on any blocked answer (not just skipping it) closes the trick of a
    resolver returning one public and one private address and letting the
    client pick.
    """
    allowed = target.host in policy.allow_private_hosts
    if target.literal_ip is not None:
        ip: IPAddress = target.literal_ip
        if not allowed and is_blocked_address(ip):
            raise URLBlocked("the URL's address is private, loopback or reserved")
        return str(ip)
    try:
        answers = (resolver or system_resolver)(target.host, target.port)
    except (OSError, UnicodeError) as exc:
        reason = getattr(exc, "strerror", None) or type(exc).__name__
        raise SourceDNSFailed(f"could not resolve host {target.host!r} ({reason})") from exc
    if not answers:
        raise SourceDNSFailed(f"host {target.host!r} resolved to no address")
    checked: list[IPAddress] = []
    for raw in answers:
        try:
            addr = ipaddress.ip_address(raw.split("%", 1)[0])
        except ValueError as exc:
            raise URLBlocked("resolver returned a non-IP answer") from exc
        if not allowed and is_blocked_address(addr):
            raise URLBlocked("host resolves to a private, loopback or reserved address")
        checked.append(addr)
    # Prefer IPv4 for reachability; the choice is among checked addresses only.
    checked.sort(key=lambda a: a.version)
    return str(checked[0])
