"""Webhook notifications: a JSON run summary POSTed through the SSRF guard. Never raises."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

import aiohttp
import orjson

from batch.outbound import guarded_post
from streams.errors import OutboundRefused

log = logging.getLogger(__name__)


async def post_summary(session: aiohttp.ClientSession, url: str, summary: dict[str, Any], *,
                       timeout_s: float, allow_hosts: Iterable[str] = ()) -> bool:
    """POST ``summary`` as JSON to ``url``; True when the endpoint answered 2xx.

    Any failure (a refused destination, refused connection, timeout, redirect or other
    non-2xx answer) is logged and returns False: a failing webhook never fails the job it
    reports on. ``session`` should come from :func:`batch.outbound.outbound_session`.
    """
    try:
        status = await guarded_post(session, url, orjson.dumps(summary),
                                    headers={"Content-Type": "application/json"},
                                    timeout_s=timeout_s, allow_hosts=allow_hosts)
        if 200 <= status < 300:
            return True
        log.warning("notification webhook answered %s (redirects are not followed)", status)
    except OutboundRefused as exc:
        log.warning("notification webhook refused: %s", exc)
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        log.warning("notification webhook failed: %s", type(exc).__name__)
    return False
