"""The one parser for every URL a client hands us: sources, replacements, callbacks, endpoints.

Why one parser: the same URL used to be judged by four hand-written rule sets
(submit, retry, the SSRF guard, endpoints) that disagreed. ``http://[::1`` reached
``urlsplit`` unguarded at submit and answered 500; ``https://`` was refused as
"must be http(s)" although its scheme was fine. Here a URL is parsed once into a
:class:`WebURL` or refused with :class:`InvalidURL` whose ``reason`` says what is
wrong in words a user can act on ("has no host", "has an invalid port").

Shape only, no policy and no I/O: whether plain http or a private host may be
fetched is the SSRF guard's decision (:mod:`.urlguard`, which starts from this
parse), and what an endpoint may carry is the destination rules' (ingest).
"""

from __future__ import annotations

import ipaddress
import re
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from genblaze_s3.transfer.errors import InvalidURL

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

MAX_URL_LENGTH = 8192
SCHEMES = frozenset({"http", "https"})
_UNSAFE = re.compile(r"[\x00-\x20\x7f\\]")
_LEGACY_V4 = re.compile(r"^[0-9a-fA-FxX.]+$")


@dataclass(frozen=True)
class WebURL:
    """An http(s) URL that parsed cleanly: the pieces every consumer needs, typed."""

    url: str  # as given (the fetcher connects to exactly what was checked)
    scheme: str  # "http" or "https"
    host: str  # as written: lowercase, IDNA-encoded, no brackets, no trailing dot
    port: int  # explicit or the scheme's default
    explicit_port: bool
    path: str  # as written ("" when absent)
    query: str
    fragment: str
    literal_ip: IPAddress | None  # the address when the host is an IP literal (any spelling)

    @property
    def target(self) -> str:
        """Path plus query as an HTTP request line wants it (never empty)."""
        path = self.path or "/"
        return f"{path}?{self.query}" if self.query else path


def refuse(reason: str) -> InvalidURL:
    """An InvalidURL whose message is ``URL <reason>`` and whose ``reason`` is kept."""
    exc = InvalidURL(f"URL {reason}")
    exc.reason = reason
    return exc


def parse_ip_literal(host: str) -> IPAddress | None:
    """The address a host string denotes literally (all legacy IPv4 spellings), else None.

    Legacy spellings (``127.1``, ``0x7f.1``, ``2130706433``) are what browsers and
    libc accept: treating them as names would let them past the address checks.
    """
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if _LEGACY_V4.match(host) and not host.endswith("."):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


def parse_web_url(url: object, *, max_length: int = MAX_URL_LENGTH) -> WebURL:
    """Parse an absolute http(s) URL or raise InvalidURL naming what is wrong with it.

    Refused: empty, longer than ``max_length``, spaces / control characters /
    backslashes (parsers disagree on them), a malformed IPv6 literal or port, a
    scheme other than http(s), userinfo (``user:pass@``: credentials do not belong
    in a URL we store, and ``a@b`` tricks readers about the host), no host, a host
    that is not a valid domain name, port 0.
    """
    if not isinstance(url, str) or not url:
        raise refuse("is empty")
    if len(url) > max_length:
        raise refuse(f"is longer than {max_length} characters")
    if _UNSAFE.search(url):
        raise refuse("contains spaces, control characters or backslashes")
    try:
        parts = urlsplit(url)
    except ValueError as exc:  # "Invalid IPv6 URL", bracketed host not an address
        raise refuse("has an invalid IPv6 address in brackets") from exc
    scheme = parts.scheme.lower()
    if not scheme:
        raise refuse("has no scheme (it must start with https:// or http://)")
    if scheme not in SCHEMES:
        raise refuse(f"must be http(s), not {scheme[:20]!r}")
    if "@" in parts.netloc or parts.username is not None or parts.password is not None:
        raise refuse("must not carry credentials (user:password@)")
    try:
        port = parts.port
    except ValueError as exc:  # "8333.evil", "99999", "-1"
        raise refuse("has an invalid port") from exc
    if port == 0:
        raise refuse("has an invalid port")
    host = (parts.hostname or "").rstrip(".").lower()
    if not host:
        raise refuse("has no host")
    try:
        host.encode("ascii")
    except UnicodeEncodeError:
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError as exc:
            raise refuse("has a host that is not a valid domain name") from exc
    literal = parse_ip_literal(host)
    return WebURL(
        url=url,
        scheme=scheme,
        host=host,
        port=port if port is not None else (443 if scheme == "https" else 80),
        explicit_port=port is not None,
        path=parts.path,
        query=parts.query,
        fragment=parts.fragment,
        literal_ip=literal,
    )


def redact(url: str) -> str:
    """The URL without query, fragment or userinfo: safe for logs and error messages."""
    try:
        parts = urlsplit(url[:2048])
        host = parts.hostname or ""
        return f"{parts.scheme}://{host}{parts.path}"[:300]
    except ValueError:
        return "<unparseable url>"
