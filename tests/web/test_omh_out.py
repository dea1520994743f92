"""``GET /omh/data-points`` on the live worker: stored readings come out as Open mHealth data
points valid by the official schemas, and sent back in through Kafka they are stored as the
same readings."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from jsonschema import Draft4Validator, FormatChecker
from omh_examples import data_point

from streams.domain.omh_schema import OMH_BASE, reference_errors, registry
from streams.domain.pseudonym import user_key
from streams.sink.migrations import quote_ident

pytestmark = pytest.mark.integration
DATA_POINT = Draft4Validator({"$ref": OMH_BASE + "data-point-1.0.json"}, registry=registry(),
                             format_checker=FormatChecker())
FACTS = "metric, unit, value, measured_at, measured_until, statistic, source"


async def test_data_points_out_and_back_in(client, api_worker, produce, pg, eventually):  # type: ignore[no-untyped-def]
    user = f"u-omh-{uuid.uuid4().hex[:8]}"
    key = api_worker.settings.pseudonym_key_bytes
    ukey = user_key(key, user)
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=3)
    await produce(data_point("blood-pressure", "4.0", {"effective_time_frame": {"date_time": t0.isoformat()}},
                             id=f"{user}-bp", user_id=user), key=user)
    readings = [
        {"metric": "heart_rate", "value": 58, "unit": "bpm", "timestamp": t0.isoformat()},
        {"metric": "steps", "value": 900, "unit": "steps", "timestamp": t0.isoformat(),
         "timestamp_end": (t0 + timedelta(hours=1)).isoformat(), "statistic": "sum"},
        {"metric": "steps", "value": 40, "unit": "steps", "timestamp": (t0 + timedelta(hours=2)).isoformat()},
        {"metric": "body_weight", "value": 154, "unit": "lb",
         "timestamp": (t0 + timedelta(minutes=5)).isoformat()},
    ]
    await produce({"batch_id": user, "user_id": user, "source": "garmin", "readings": readings}, key=user)
    s = quote_ident(api_worker.settings.warehouse_schema)
    await eventually(lambda: pg.fetchval(f"SELECT count(*) = 6 FROM {s}.health_readings WHERE user_key = $1",
                                         ukey))

    points, skipped, url, pages = [], {}, f"/omh/data-points?subject={ukey}&_count=2", 0
    while url:
        reply = await client.call("GET", url, role="analyst")
        assert reply.status == 200, reply.body
        assert user not in str(reply.body)  # the pseudonym only
        points += reply.body["data_points"]
        for reason, n in reply.body["not_expressible"].items():
            skipped[reason] = skipped.get(reason, 0) + n
        url, pages = reply.body["links"].get("next"), pages + 1
    assert pages == 3 and len(points) == 4 and sum(skipped.values()) == 1  # the instant step count
    for dp in points:
        assert list(DATA_POINT.iter_errors(dp)) == [], dp
        sid = dp["header"]["schema_id"]
        assert list(reference_errors(sid["name"], sid["version"], dp["body"])) == [], dp
        assert dp["header"]["user_id"] == ukey
    assert sorted(dp["header"]["schema_id"]["name"] for dp in points) == [
        "blood-pressure", "body-weight", "heart-rate", "step-count"]

    only_bp = await client.call("GET", "/omh/data-points", role="analyst",
                                params={"subject": ukey, "schema": "omh:blood-pressure:4.0"})
    assert [dp["header"]["schema_id"]["name"] for dp in only_bp.body["data_points"]] == ["blood-pressure"]
    by_metric = await client.call("GET", "/omh/data-points", role="analyst",
                                  params={"subject": ukey, "metric": "heart_rate"})
    assert [dp["body"]["heart_rate"]["value"] for dp in by_metric.body["data_points"]] == [58.0]

    for dp in points:  # back in: the header's user is the pseudonym, so a new pseudonym of it
        await produce(dp, key="omh-round-trip")
    again = user_key(key, ukey)
    await eventually(lambda: pg.fetchval(f"SELECT count(*) = 5 FROM {s}.health_readings WHERE user_key = $1",
                                         again))
    query = f"SELECT {FACTS} FROM {s}.health_readings WHERE user_key = $1 ORDER BY metric, measured_at"
    original = [tuple(r) for r in await pg.fetch(query, ukey) if not (r["metric"] == "steps" and
                                                                      r["measured_until"] is None)]
    assert [tuple(r) for r in await pg.fetch(query, again)] == original


@pytest.mark.parametrize(("params", "status", "role"), [
    ({"schema": "omh:heart-rate:1.0"}, 422, "analyst"),  # out: the current version only
    ({"schema": "heart-rate", "metric": "steps"}, 422, "analyst"),
    ({"metric": "pulse"}, 422, "analyst"),
    ({}, 403, "viewer"),
])
async def test_data_point_search_refusals(client, params, status, role) -> None:  # type: ignore[no-untyped-def]
    assert (await client.call("GET", "/omh/data-points", role=role, params=params)).status == status
