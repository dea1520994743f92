"""The ``user_profiles`` dimension: idempotent upserts and deletes. SQL lives here only."""

from __future__ import annotations

import asyncpg

from streams.domain.profiles import UserProfile
from streams.records import DeadLetter
from streams.sink.erasure import PROFILE_LOCK, REGISTER
from streams.sink.migrations import quote_ident


async def upsert_profile(pool: asyncpg.Pool, schema: str, profile: UserProfile) -> bool:
    """Store ``profile`` unless a newer one (later ``updated_at``) is stored, or the person
    is in the erasure register; True if written.

    Re-applying the same profile, or an older one (a replay), changes nothing. The lock is a
    statement of its own, so that the check sees an erasure that committed while it waited
    (:mod:`streams.sink.erasure`).
    """
    s = quote_ident(schema)
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(PROFILE_LOCK.replace("{s}", s))
        done = await conn.execute(
            f"INSERT INTO {s}.user_profiles AS p"
            " (user_key, timezone, birth_year, age_over_89, sex, updated_at)"
            " SELECT $1::text, $2::text, $3::smallint, $4::boolean, $5::text, $6::timestamptz"
            f" WHERE NOT EXISTS (SELECT 1 FROM {s}.{REGISTER} WHERE user_key = $1)"
            " ON CONFLICT (user_key) DO UPDATE SET timezone = EXCLUDED.timezone,"
            " birth_year = EXCLUDED.birth_year, age_over_89 = EXCLUDED.age_over_89, sex = EXCLUDED.sex,"
            " updated_at = EXCLUDED.updated_at WHERE p.updated_at <= EXCLUDED.updated_at",
            profile.user_key, profile.timezone, profile.birth_year, profile.age_over_89, profile.sex,
            profile.updated_at)
    return not done.endswith(" 0")


async def delete_profile(db: asyncpg.Pool | asyncpg.Connection, schema: str, user_key: str) -> None:
    await db.execute(f"DELETE FROM {quote_ident(schema)}.user_profiles WHERE user_key = $1", user_key)


async def record_dead_profile(db: asyncpg.Pool | asyncpg.Connection, schema: str, topic: str, partition: int,
                              offset: int, letter: DeadLetter) -> None:
    """Count a rejected profile in ``dead_letters`` once (redeliveries are ignored)."""
    await db.execute(
        f'INSERT INTO {quote_ident(schema)}.dead_letters (topic, partition, "offset", member_index, reason,'
        " metric, source, message) VALUES ($1, $2, $3, 0, $4, NULL, NULL, $5) ON CONFLICT DO NOTHING",
        topic, partition, offset, str(letter.code), letter.message)
