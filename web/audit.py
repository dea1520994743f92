"""The audit trail: one ``audit_log`` row per API call that reads data or changes state.

What is recorded: when, who (token subject and roles; ``NULL`` when unauthenticated),
the action (the route's name, e.g. ``etl_jobs.run``), the target (a job id, a data type,
a DLQ selector: never a user id, a reading or a payload), the outcome and HTTP status, and
the request id that the caller also received in ``X-Request-Id``.

Every text field is sanitised first (:func:`sanitise`): control characters (NUL, C0, DEL,
C1) and backslashes are escaped, lone surrogates too, and lengths are bounded, so that no
input can make the insert fail or forge a line in an export. Denied and failed calls are
recorded too. The row is written after the call has been
answered by its handler; if the warehouse cannot take it, the failure is logged and
counted in the response header ``X-Audit: failed`` (the call's own effect has already
happened and is not rolled back). ``audit_log`` is append-only (a trigger refuses UPDATE
and DELETE).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from streams.sink.warehouse import Warehouse
from web.auth import Principal
from web.queries import AuditEntry, insert_audit

log = logging.getLogger(__name__)

MAX_TARGET_CHARS = 512
MAX_SUBJECT_CHARS = 256
MAX_ACTION_CHARS = 128


def sanitise(text: str | None, limit: int) -> str | None:
    """``text`` with ``\\``, control characters and lone surrogates escaped (``\\x00``,
    ``\\ud800``), cut to ``limit`` characters (ending in ``…`` when cut)."""
    if text is None:
        return None
    out = []
    for ch in text:
        code = ord(ch)
        if ch == "\\":
            out.append("\\\\")
        elif code < 0x20 or 0x7F <= code < 0xA0:
            out.append(f"\\x{code:02x}")
        elif 0xD800 <= code < 0xE000:
            out.append(f"\\u{code:04x}")
        else:
            out.append(ch)
    clean = "".join(out)
    return clean if len(clean) <= limit else clean[:limit - 1] + "…"


class AuditTrail:
    """Writes audit rows through the worker's warehouse pool."""

    def __init__(self, warehouse: Warehouse, schema: str, clock: Callable[[], datetime]) -> None:
        self.warehouse = warehouse
        self.schema = schema
        self.clock = clock

    async def record(self, *, principal: Principal | None, action: str, target: str | None,
                     outcome: str, status: int, request_id: str) -> bool:
        """Write one row; return False (and log) if the warehouse refused it."""
        entry = AuditEntry(
            occurred_at=self.clock(),
            subject=sanitise(principal.subject, MAX_SUBJECT_CHARS) if principal else None,
            roles=principal.roles if principal else (),
            action=sanitise(action, MAX_ACTION_CHARS) or "",
            target=sanitise(target, MAX_TARGET_CHARS) if target else None,
            outcome=outcome,
            status=status,
            request_id=request_id,
        )
        try:
            await insert_audit(self.warehouse.pool, self.schema, entry)
        except Exception as exc:  # noqa: BLE001 - auditing must not crash the answer path
            log.error("audit row not written (action=%s request_id=%s): %s",
                      action, request_id, type(exc).__name__)
            return False
        return True
