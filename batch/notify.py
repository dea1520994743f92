"""Webhook notifications: a JSON run summary POSTed with aiohttp. Never raises."""

from __future__ import annotations

import logging
from typing import Any

import aiohttp
import orjson

log = logging.getLogger(__name__)


async def post_summary(session: aiohttp.ClientSession, url: str, summary: dict[str, Any], *,
                       timeout_s: float) -> bool:
    """POST ``summary`` as JSON to ``url``; True when the endpoint answered 2xx.

    Any failure (refused connection, timeout, non-2xx answer) is logged and returns False:
    a failing webhook never fails the job it reports on.
    """
    try:
        async with session.post(url, data=orjson.dumps(summary),
                                headers={"Content-Type": "application/json"},
                                timeout=aiohttp.ClientTimeout(total=timeout_s)) as resp:
            if 200 <= resp.status < 300:
                return True
            log.warning("notification webhook answered %s", resp.status)
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        log.warning("notification webhook failed: %s", type(exc).__name__)
    return False
