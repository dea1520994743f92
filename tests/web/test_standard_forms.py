"""Every input form through the real worker (``python -m streams worker``, real Kafka and
PostgreSQL): what is stored in the warehouse, what lands in the DLQ with which reason; then
FHIR out over HTTP, parsed back with fhir.resources."""

from __future__ import annotations

import copy
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from fhir.resources.R4B.bundle import Bundle
from fhir_examples import BLOOD_PRESSURE, HEART_RATE
from fhir_examples import EXPECTED as FHIR_EXPECTED
from omh_examples import ALLOWED, FORBIDDEN, data_point
from pipeline_support import read_topic

from streams.domain.pseudonym import device_key, user_key
from streams.sink.migrations import quote_ident

pytestmark = pytest.mark.integration


def _fhir(example: dict, run: str) -> dict:
    doc = copy.deepcopy(example)
    doc["id"] = f"{run}-{doc['id']}"
    return doc


async def test_every_form_is_stored_or_dead_lettered_by_the_worker(api_worker, produce, pg, eventually):  # type: ignore[no-untyped-def]
    run = uuid.uuid4().hex[:8]
    now = datetime.now(UTC).replace(microsecond=0)
    sent: dict[tuple[int, int], str | None] = {}  # (partition, offset) -> expected reason (None: stored)
    stored: dict[str, tuple[str, str]] = {}  # event_id -> (metric, unit)

    async def send(doc: object, reason: str | None, *, key: str = "u-forms") -> None:
        meta = await produce(doc, key=key)
        sent[(meta.partition, meta.offset)] = reason

    # our own forms: an interval with a statistic, and an envelope with one bad member
    single = {
        "event_id": f"{run}-single",
        "user_id": "u-forms",
        "source": "fitbit",
        "metric": "heart_rate",
        "value": 48,
        "unit": "bpm",
        "timestamp": (now - timedelta(hours=8)).isoformat(),
        "timestamp_end": (now - timedelta(minutes=1)).isoformat(),
        "statistic": "minimum",
    }
    await send(single, None)
    stored[single["event_id"]] = ("heart_rate", "/min")
    envelope = {
        "batch_id": f"{run}-b",
        "user_id": "u-forms",
        "source": "garmin",
        "readings": [
            {
                "event_id": f"{run}-m1",
                "metric": "steps",
                "value": 900,
                "unit": "steps",
                "timestamp": (now - timedelta(minutes=30)).isoformat(),
                "timestamp_end": (now - timedelta(minutes=15)).isoformat(),
            },
            {
                "event_id": f"{run}-m2",
                "metric": "steps",
                "value": 9,
                "unit": "steps",
                "statistic": "mode",
                "timestamp": (now - timedelta(minutes=30)).isoformat(),
            },
        ],
    }
    meta = await produce(envelope, key="u-forms")
    stored[f"{run}-m1"] = ("steps", "{steps}")
    envelope_offset = (meta.partition, meta.offset)

    # every supported Open mHealth schema version: an allowed body, and every forbidden one
    for name, version, changes in ALLOWED:
        doc = data_point(name, version, changes, id=f"{run}-{name}-{version}")
        await send(doc, None)
        suffixes = ("#systolic", "#diastolic") if name == "blood-pressure" else ("",)
        for suffix in suffixes:
            stored[f"{run}-{name}-{version}{suffix}"] = ("", "")
    for i, (name, version, changes, _) in enumerate(FORBIDDEN):
        await send(data_point(name, version, changes, id=f"{run}-bad-{i}"), "schema_violation")
    await send(data_point("heart-rate", "9.0", id=f"{run}-v9"), "unsupported_schema")

    # every FHIR vital-signs example of the specification, a Bundle with one bad entry
    for example, readings in FHIR_EXPECTED:
        await send(_fhir(example, run), None, key="u-fhir")
        for event_id, metric, _, unit in readings:
            stored[f"{run}-{event_id}"] = (metric, unit)
    broken = {k: v for k, v in _fhir(HEART_RATE, run).items() if k != "status"} | {"id": f"{run}-broken"}
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {"resource": _fhir(BLOOD_PRESSURE, run) | {"id": f"{run}-bundled-bp"}},
            {"resource": broken},
        ],
    }
    meta = await produce(bundle, key="u-fhir")
    bundle_offset = (meta.partition, meta.offset)
    stored[f"{run}-bundled-bp#8480-6"] = ("blood_pressure_systolic", "mm[Hg]")
    stored[f"{run}-bundled-bp#8462-4"] = ("blood_pressure_diastolic", "mm[Hg]")
    unmapped = _fhir(HEART_RATE, run) | {
        "id": f"{run}-unmapped",
        "code": {"coding": [{"system": "http://loinc.org", "code": "1234-5"}]},
    }
    await send(unmapped, "unknown_metric", key="u-fhir")
    await send({"resourceType": "Patient", "id": "p"}, "unsupported_schema")

    s = quote_ident(api_worker.settings.warehouse_schema)
    ids = sorted(stored)
    rows = await eventually(lambda: _rows_when(pg, s, ids), timeout=60)
    assert {r["event_id"] for r in rows} == set(ids)
    for r in rows:
        metric, unit = stored[r["event_id"]]
        if metric:
            assert (r["metric"], r["unit"]) == (metric, unit), r["event_id"]
    by_id = {r["event_id"]: r for r in rows}
    assert by_id[f"{run}-single"]["statistic"] == "minimum"
    assert by_id[f"{run}-single"]["measured_until"] == now - timedelta(minutes=1)
    assert by_id[f"{run}-heart-rate"]["measured_until"] == datetime(1999, 7, 3, tzinfo=UTC)
    assert by_id[f"{run}-body-weight-2.0"]["value"] == pytest.approx(154 * 0.45359237)
    key = api_worker.settings.pseudonym_key_bytes
    assert by_id[f"{run}-heart-rate"]["user_key"] == user_key(key, "example")  # Patient/example
    assert by_id[f"{run}-heart-rate-2.0"]["user_key"] == user_key(key, "omh-user-1")

    expected = Counter(code for code in sent.values() if code)
    expected.update({"invalid_type": 1, "schema_violation": 1})  # the envelope member, the bundle entry
    ours = set(sent) | {envelope_offset, bundle_offset}
    dlq = await eventually(lambda: _our_dead_letters(api_worker, ours, sum(expected.values())), timeout=60)
    assert Counter(dict(r.headers)["error.code"].decode() for r in dlq) == expected
    [entry] = [
        r
        for r in dlq
        if (int(dict(r.headers)["source.partition"]), int(dict(r.headers)["source.offset"])) == bundle_offset
    ]
    assert orjson.loads(entry.value) == broken  # the bad entry alone
    assert dict(entry.headers)["error.message"].decode().startswith("/entry/1/resource/status:")
    for record in dlq:
        assert b"omh-user-1" not in b"".join(v for _, v in record.headers)
    booked = await pg.fetchval(
        f'SELECT count(*) FROM {s}.dead_letters WHERE (partition, "offset") IN '
        "(SELECT * FROM unnest($1::int[], $2::bigint[]))",
        [p for p, _ in ours],
        [o for _, o in ours],
    )
    assert booked == sum(expected.values())


async def _rows_when(pg, s: str, ids: list[str]):  # type: ignore[no-untyped-def]
    rows = await pg.fetch(f"SELECT * FROM {s}.health_readings WHERE event_id = ANY($1)", ids)
    return rows if len(rows) == len(ids) else None


async def _our_dead_letters(api_worker, ours: set[tuple[int, int]], count: int):  # type: ignore[no-untyped-def]
    records = await read_topic(api_worker.settings.kafka_bootstrap, api_worker.settings.dlq_topic)
    mine = [
        r
        for r in records
        if (int(dict(r.headers)["source.partition"]), int(dict(r.headers)["source.offset"])) in ours
    ]
    return mine if len(mine) >= count else None


async def test_fhir_export_round_trip(client, api_worker, produce, pg, eventually):  # type: ignore[no-untyped-def]
    user = f"u-export-{uuid.uuid4().hex[:8]}"
    ukey = user_key(api_worker.settings.pseudonym_key_bytes, user)
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=3)
    sent = [
        {
            "event_id": f"{user}-hr",
            "metric": "heart_rate",
            "value": 61,
            "unit": "bpm",
            "timestamp": t0.isoformat(),
        },
        {
            "event_id": f"{user}-hr-min",
            "metric": "heart_rate",
            "value": 47,
            "unit": "bpm",
            "timestamp": t0.isoformat(),
            "timestamp_end": (t0 + timedelta(hours=2)).isoformat(),
            "statistic": "minimum",
        },
        {
            "event_id": f"{user}-wt",
            "metric": "body_weight",
            "value": 154,
            "unit": "lb",
            "timestamp": (t0 + timedelta(minutes=5)).isoformat(),
        },
        {
            "event_id": f"{user}-steps",
            "metric": "steps",
            "value": 1200,
            "unit": "steps",
            "timestamp": (t0 + timedelta(minutes=10)).isoformat(),
            "timestamp_end": (t0 + timedelta(minutes=25)).isoformat(),
        },
    ]
    await produce(
        {"batch_id": user, "user_id": user, "device_id": "watch-7", "source": "garmin", "readings": sent},
        key=user,
    )
    s = quote_ident(api_worker.settings.warehouse_schema)
    await eventually(
        lambda: pg.fetchval(f"SELECT count(*) = 4 FROM {s}.health_readings WHERE user_key = $1", ukey)
    )

    entries, url, pages = [], f"/fhir/Observation?subject=Patient/{ukey}&_count=3", 0
    while url:
        reply = await client.call("GET", url, role="analyst")
        assert reply.status == 200, reply.body
        assert reply.headers["Content-Type"].startswith("application/fhir+json")
        bundle = Bundle.model_validate(reply.body)  # every emitted Observation parses back
        assert bundle.type == "searchset"
        assert user not in orjson.dumps(reply.body).decode()  # the pseudonym only
        entries += bundle.entry
        links = {link.relation: link.url for link in bundle.link}
        url, pages = links.get("next"), pages + 1
    assert pages == 2 and len(entries) == 4
    got = sorted(
        (
            e.resource.code.coding[0].code,
            e.resource.valueQuantity.code,
            round(float(e.resource.valueQuantity.value), 6),
        )
        for e in entries
    )
    assert got == [
        ("29463-7", "kg", round(154 * 0.45359237, 6)),
        ("55423-8", "{steps}", 1200.0),
        ("8867-4", "/min", 47.0),
        ("8867-4", "/min", 61.0),
    ]
    by_value = {float(e.resource.valueQuantity.value): e.resource for e in entries}
    assert by_value[47.0].effectivePeriod.end == t0 + timedelta(hours=2)
    assert (
        by_value[61.0].effectiveDateTime == t0 and by_value[61.0].category[0].coding[0].code == "vital-signs"
    )
    assert (
        by_value[61.0].subject.reference == f"Patient/{ukey}" and by_value[61.0].device.display == device_key(
            api_worker.settings.pseudonym_key_bytes, "watch-7")
    )

    only_hr = await client.call(
        "GET",
        "/fhir/Observation",
        role="analyst",
        params=[
            ("subject", ukey),
            ("code", "http://loinc.org|8867-4"),
            ("date", f"ge{t0.isoformat()}"),
            ("date", f"lt{(t0 + timedelta(minutes=1)).isoformat()}"),
        ],
    )
    assert only_hr.status == 200, only_hr.body
    assert sorted(e["resource"]["valueQuantity"]["value"] for e in only_hr.body["entry"]) == [47.0, 61.0]


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({"date": "gt2026-01-01"}, 422),
        ({"subject": "Patient/alice"}, 422),
        ({"code": "heart_rate"}, 422),
        ({"_count": "0"}, 422),
        ({"_sort": "date"}, 422),
    ],
)
async def test_fhir_search_refuses_bad_parameters(client, params, status) -> None:  # type: ignore[no-untyped-def]
    reply = await client.call("GET", "/fhir/Observation", role="analyst", params=params)
    assert reply.status == status, reply.body


async def test_fhir_search_needs_the_analyst_role(client) -> None:  # type: ignore[no-untyped-def]
    assert (await client.call("GET", "/fhir/Observation", role="viewer")).status == 403


async def test_schemas_list_the_forms_and_serve_the_json_schema(client) -> None:  # type: ignore[no-untyped-def]
    reply = await client.call("GET", "/schemas", role="viewer")
    assert reply.status == 200
    forms = {f["form"]: f for f in reply.body["forms"]}
    assert set(forms) == {"single", "envelope", "wide", "openmhealth", "fhir"}
    assert (
        "omh:heart-rate:2.0" in forms["openmhealth"]["schemas"] and len(forms["openmhealth"]["schemas"]) == 37
    )
    assert "schema_violation" in forms["fhir"]["reasons"]
    schema = await client.call("GET", "/schemas/healthmate-reading.json", role="viewer")
    assert schema.status == 200
    assert {"SingleReading", "BatchEnvelope", "WideMessage"} <= set(schema.body["$defs"])
