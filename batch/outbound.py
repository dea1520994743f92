"""Outbound HTTP for webhooks and OpenLineage, with the SSRF guard applied at send time.

:func:`outbound_session` builds the one kind of client session these posts use: its
resolver refuses a host name any of whose DNS answers is not public (loopback, private,
link-local, multicast, unspecified… see :mod:`streams.domain.outbound`) unless the host is
in ``HEALTHMATE_OUTBOUND_ALLOW_HOSTS``; the connection is then made to exactly the
addresses that were checked, so a second, different DNS answer cannot slip in. IP
literals never reach a resolver, so :func:`guarded_post` checks the URL itself first.
Redirects are never followed (a 3xx answer is a failed delivery).
"""

from __future__ import annotations

import socket
from collections.abc import Iterable
from typing import Any

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

from streams.domain.outbound import check_outbound_url, is_allowed_host, parse_address, refused_address
from streams.errors import OutboundRefused


class GuardedResolver(AbstractResolver):
    """Resolves with aiohttp's default resolver, then refuses non-public answers."""

    def __init__(self, allow_hosts: Iterable[str]) -> None:
        self.allow_hosts = tuple(allow_hosts)
        self._inner = DefaultResolver()

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        answers = await self._inner.resolve(host, port, family)
        if is_allowed_host(host, self.allow_hosts):
            return answers
        for answer in answers:
            address = parse_address(answer["host"])
            reason = "unparseable" if address is None else refused_address(address)
            if reason is not None:
                # An OSError, so aiohttp reports it as a connection failure (never followed).
                raise OSError(f"outbound host resolves to a {reason} address")
        return answers

    async def close(self) -> None:
        await self._inner.close()


def outbound_session(allow_hosts: Iterable[str]) -> aiohttp.ClientSession:
    """A client session whose every connection passed the guard (use it as a context manager)."""
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(resolver=GuardedResolver(allow_hosts)))


async def guarded_post(session: aiohttp.ClientSession, url: str, body: bytes, *, headers: dict[str, str],
                       timeout_s: float, allow_hosts: Iterable[str]) -> int:
    """POST ``body`` to ``url`` without following redirects; return the status.

    Raises :class:`OutboundRefused` for a refused URL, and aiohttp's errors (or
    ``OSError``, ``TimeoutError``) when the call fails.
    """
    check_outbound_url(url, allow_hosts)
    kwargs: dict[str, Any] = {"data": body, "headers": headers, "allow_redirects": False,
                              "timeout": aiohttp.ClientTimeout(total=timeout_s)}
    async with session.post(url, **kwargs) as resp:
        return resp.status


__all__ = ["GuardedResolver", "OutboundRefused", "guarded_post", "outbound_session"]
