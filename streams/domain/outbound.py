"""Which addresses the pipeline may call out to (webhooks, OpenLineage). Pure: no I/O.

Only public unicast addresses are allowed, unless the URL's host is listed in
``HEALTHMATE_OUTBOUND_ALLOW_HOSTS``. A host is judged as an address in every spelling the
C resolver (``inet_aton``) and URL parsers accept: dotted quads, decimal ``2130706433``,
hex ``0x7f000001``, octal ``0177.0.0.1``, short forms ``127.1``, bracketed IPv6 with or
without a zone, and IPv6 forms that embed an IPv4 address (``::ffff:127.0.0.1``, 6to4,
NAT64, Teredo). Host names are checked again after DNS by the sender
(:func:`refused_address` on every resolved address).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from urllib.parse import urlsplit

from streams.errors import OutboundRefused

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_HEX, _OCT, _DEC = re.compile(r"^0x[0-9a-f]*$"), re.compile(r"^0[0-7]*$"), re.compile(r"^[1-9][0-9]*$")
_LOCAL_NAMES = ("localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback")


def normalise_host(host: str) -> str:
    """Lower case, brackets and one trailing dot removed."""
    h = host.strip().lower()
    if h.startswith("[") and h.endswith("]"):
        h = h[1:-1]
    return h[:-1] if h.endswith(".") and not h.endswith("..") else h


def parse_address(host: str) -> IPAddress | None:
    """The address ``host`` denotes when it is an IP literal in any accepted spelling; None
    for a host name."""
    h = normalise_host(host)
    if ":" in h:
        try:
            return ipaddress.IPv6Address(h.split("%", 1)[0])
        except ValueError:
            return None
    return _inet_aton(h)


def _inet_aton(h: str) -> ipaddress.IPv4Address | None:
    parts = h.split(".")
    if not 1 <= len(parts) <= 4:
        return None
    values = []
    for part in parts:
        if _HEX.match(part):
            values.append(int(part[2:] or "0", 16))
        elif _OCT.match(part):
            values.append(int(part, 8))
        elif _DEC.match(part):
            values.append(int(part))
        else:
            return None
    *head, last = values
    if any(v > 255 for v in head) or last >= 256 ** (5 - len(values)):
        return None
    number = last
    for i, v in enumerate(head):
        number |= v << (8 * (3 - i))
    return ipaddress.IPv4Address(number)


def refused_address(address: IPAddress) -> str | None:
    """Why ``address`` may not be called (``"loopback"``, ``"private"``…), or None if public."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is None and address in _NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is None and address.teredo:
            embedded = address.teredo[1]
        if embedded is not None:
            return refused_address(embedded)
    for reason, hit in (("unspecified", address.is_unspecified), ("loopback", address.is_loopback),
                        ("link-local", address.is_link_local), ("multicast", address.is_multicast),
                        ("private", address.is_private), ("reserved", address.is_reserved)):
        if hit:
            return reason
    return None if address.is_global else "not public"


def is_allowed_host(host: str, allow_hosts: Iterable[str]) -> bool:
    """Whether ``host`` is listed: names compare case-insensitively, addresses by value
    (so an allowed ``127.0.0.1`` also allows ``127.1``, but nothing else)."""
    h = normalise_host(host)
    address = parse_address(h)
    for allowed in allow_hosts:
        a = normalise_host(allowed)
        if a == h or (address is not None and parse_address(a) == address):
            return True
    return False


def check_outbound_url(url: str, allow_hosts: Iterable[str]) -> None:
    """Raise :class:`OutboundRefused` unless ``url`` is http(s) to an allowed or public host.

    A host name passes here (it can only be judged after DNS, by the sender) unless it is
    one of the names that always mean this machine (``localhost``, ``*.localhost``).
    """
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise OutboundRefused("the URL cannot be parsed") from None
    if parts.scheme not in ("http", "https") or not host:
        raise OutboundRefused("the URL must be http(s) with a host")
    if is_allowed_host(host, allow_hosts):
        return
    address = parse_address(host)
    if address is not None:
        reason = refused_address(address)
        if reason is not None:
            raise OutboundRefused(f"the URL's host is a {reason} address "
                                  "(list it in HEALTHMATE_OUTBOUND_ALLOW_HOSTS to allow it)")
        return
    name = normalise_host(host)
    if name in _LOCAL_NAMES or name.endswith(".localhost"):
        raise OutboundRefused("the URL's host names this machine "
                              "(list it in HEALTHMATE_OUTBOUND_ALLOW_HOSTS to allow it)")


def mask_url(url: str) -> str:
    """``url`` with its user info and every query value replaced by ``***`` (for viewers)."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        netloc = "***@" + netloc.rsplit("@", 1)[1]
    query = "&".join(p.split("=", 1)[0] + "=***" if p else p for p in parts.query.split("&")) \
        if parts.query else ""
    masked = f"{parts.scheme}://{netloc}{parts.path}"
    if query:
        masked += "?" + query
    return masked + ("#***" if parts.fragment else "")
