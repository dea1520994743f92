"""OpenLineage for the streaming pipeline itself: one run per worker lifetime.

START is recorded when the worker's ingest service is up, COMPLETE when the worker stops
cleanly; a worker that dies leaves its run without an end event, which is the truth.
Recording is best effort: lineage never stops ingestion.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

from mode import Service
from openlineage.client.event_v2 import RunState

from batch.lineage import record, stream_event
from batch.outbound import outbound_session
from streams.config import Settings
from streams.sink.warehouse import Warehouse

log = logging.getLogger(__name__)


class StreamLineage(Service):
    """Start it after the ingest service (it uses the warehouse pool that one opens)."""

    def __init__(self, settings: Settings, warehouse: Warehouse, clock: Callable[[], datetime],
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.settings, self.warehouse, self.clock = settings, warehouse, clock
        self.run_id = uuid.uuid4()

    async def on_start(self) -> None:
        await self._record(RunState.START)

    async def on_stop(self) -> None:
        await self._record(RunState.COMPLETE)

    async def _record(self, state: RunState) -> None:
        event = stream_event(state, self.run_id, self.settings, at=self.clock())
        try:
            async with outbound_session(self.settings.outbound_allow_host_list) as session:
                await record(self.warehouse.pool, self.settings, event, session)
        except Exception as exc:  # noqa: BLE001 - lineage is best effort
            log.warning("stream lineage %s not recorded: %s", state.value, type(exc).__name__)
