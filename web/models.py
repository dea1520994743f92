"""Request models: what the API accepts. Unknown fields are rejected everywhere."""

from __future__ import annotations

from typing import Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from streams.errors import RejectReason

MAX_SAMPLE_SIZE = 100_000
MAX_REDRIVE = 100_000


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NoBody(Strict):
    """An empty JSON object (or no body at all)."""


class OptimizeBody(Strict):
    dry_run: bool = Field(False, description="Report what would be done; change nothing.")


class RedriveBody(Strict):
    """Which dead letters to re-feed: by reason, by source offset range, or both."""

    reason: RejectReason | None = Field(None, description="Only letters with this error.code.")
    partition: int | None = Field(None, ge=0, description="Source (raw topic) partition of the range.")
    from_offset: int | None = Field(None, ge=0, description="First source offset, inclusive.")
    to_offset: int | None = Field(None, ge=0, description="Last source offset, inclusive.")
    max_records: int = Field(10_000, ge=1, le=MAX_REDRIVE, description="Re-feed at most this many.")
    dry_run: bool = Field(False, description="Select and count; publish nothing.")

    @model_validator(mode="after")
    def _a_selection(self) -> Self:
        ranged = (self.partition, self.from_offset, self.to_offset)
        if self.reason is None and all(v is None for v in ranged):
            raise ValueError("choose dead letters by reason and/or partition with an offset range")
        if any(v is not None for v in ranged) and self.partition is None:
            raise ValueError("an offset range needs its partition")
        if self.from_offset is not None and self.to_offset is not None and self.from_offset > self.to_offset:
            raise ValueError("from_offset must not exceed to_offset")
        return self

    def selects(self, reason: str | None, topic_ok: bool, partition: int | None, offset: int | None) -> bool:
        """Whether a dead letter with these headers is chosen."""
        if not topic_ok:
            return False
        if self.reason is not None and reason != self.reason:
            return False
        if self.partition is not None:
            if partition != self.partition or offset is None:
                return False
            if self.from_offset is not None and offset < self.from_offset:
                return False
            if self.to_offset is not None and offset > self.to_offset:
                return False
        return True
