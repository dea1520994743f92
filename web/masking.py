"""What viewers see of stored secrets: URLs with their credentials and query values masked."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

MASK = "***"


def mask_url(url: str) -> str:
    """``url`` without its user, password, query values and fragment (pure)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    netloc = (f"{MASK}@" if parts.username or parts.password else "") + host
    if parts.port is not None:
        netloc += f":{parts.port}"
    query = urlencode([(k, MASK) for k, _ in parse_qsl(parts.query, keep_blank_values=True)], safe="*")
    return urlunsplit((parts.scheme, netloc, parts.path, query, MASK if parts.fragment else ""))


def mask_job_secrets(job: dict[str, Any]) -> dict[str, Any]:
    """An ETL job's JSON form with its webhook URL masked (a new dict)."""
    url = job.get("notification_webhook_url")
    return {**job, "notification_webhook_url": mask_url(url)} if url else job
