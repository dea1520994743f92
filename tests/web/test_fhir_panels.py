"""Blood pressure through the worker and out of ``GET /fhir/Observation`` and the subject export:
one 85354-9 panel per measurement, whichever form it came in, found by 85354-9, 8480-6 and
8462-4, never split across pages; every Observation meets the vital-signs profile's rules."""

from __future__ import annotations

import copy
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from fhir.resources.R4B.bundle import Bundle
from fhir_examples import BLOOD_PRESSURE
from fhir_profile import vital_sign_problems
from omh_examples import data_point

from streams.domain.pseudonym import user_key
from streams.sink.migrations import quote_ident

pytestmark = pytest.mark.integration


def _components(obs: dict) -> dict[str, float | None]:
    return {c["code"]["coding"][0]["code"]: c.get("valueQuantity", {}).get("value") for c in obs["component"]}


async def test_blood_pressure_is_one_panel_in_search_and_export(client, api_worker, produce, pg, eventually):  # type: ignore[no-untyped-def]
    user = f"u-bp-{uuid.uuid4().hex[:8]}"
    ukey = user_key(api_worker.settings.pseudonym_key_bytes, user)
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
    fhir = copy.deepcopy(BLOOD_PRESSURE)  # the R4 specification's example: 107/60
    fhir.update({"id": f"{user}-fhir", "subject": {"reference": f"Patient/{user}"},
                 "effectiveDateTime": t0.isoformat()})
    await produce(fhir, key=user)
    omh = data_point("blood-pressure", "4.0", {"effective_time_frame": {
        "date_time": (t0 + timedelta(minutes=1)).isoformat()}}, id=f"{user}-omh", user_id=user)  # 121/79
    await produce(omh, key=user)
    pair_at = (t0 + timedelta(minutes=2)).isoformat()
    cuff = {"user_id": user, "device_id": "cuff", "source": "omron", "unit": "mmHg"}
    for metric, value in (("blood_pressure_systolic", 131), ("blood_pressure_diastolic", 83)):
        await produce({**cuff, "metric": metric, "value": value, "timestamp": pair_at}, key=user)
    heart = {**cuff, "metric": "heart_rate", "value": 64, "unit": "bpm", "timestamp": pair_at}
    await produce(heart, key=user)
    await produce({**cuff, "metric": "blood_pressure_systolic", "value": 142,
                   "timestamp": (t0 + timedelta(minutes=3)).isoformat()}, key=user)
    s = quote_ident(api_worker.settings.warehouse_schema)
    await eventually(
        lambda: pg.fetchval(f"SELECT count(*) = 8 FROM {s}.health_readings WHERE user_key = $1", ukey))

    async def search(code: str | None, count: int = 50) -> list[dict]:
        url = f"/fhir/Observation?subject={ukey}&_count={count}" + (f"&code={code}" if code else "")
        entries: list[dict] = []
        while url:
            reply = await client.call("GET", url, role="analyst")
            assert reply.status == 200, reply.body
            Bundle.model_validate(reply.body)
            entries += [e["resource"] for e in reply.body.get("entry", [])]
            url = next((link["url"] for link in reply.body["link"] if link["relation"] == "next"), None)
        return entries

    everything = await search(None, count=2)  # pages of two Observations: a panel is never split
    assert len(everything) == 5 and len({o["id"] for o in everything}) == 5
    for obs in everything:
        assert vital_sign_problems(obs) == [], obs
    panels = [o for o in everything if o["code"]["coding"][0]["code"] == "85354-9"]
    assert sorted((c.get("8480-6"), c.get("8462-4")) for c in map(_components, panels)) == [
        (107.0, 60.0), (121.0, 79.0), (131.0, 83.0), (142.0, None)]
    assert all("valueQuantity" not in p for p in panels)
    by_code = {code: sorted(o["id"] for o in await search(code)) for code in ("85354-9", "8480-6", "8462-4")}
    ids = sorted(p["id"] for p in panels)
    lone = next(p["id"] for p in panels if _components(p)["8462-4"] is None)
    assert by_code == {"85354-9": ids, "8480-6": ids, "8462-4": sorted(set(ids) - {lone})}
    assert [o["code"]["coding"][0]["code"] for o in await search("8867-4")] == ["8867-4"]
    spo2_reading = {**cuff, "metric": "oxygen_saturation", "value": 97, "unit": "%", "timestamp": pair_at}
    await produce(spo2_reading, key=user)
    await eventually(
        lambda: pg.fetchval(f"SELECT count(*) = 9 FROM {s}.health_readings WHERE user_key = $1", ukey))
    for code in ("2708-6", "59408-5"):  # the oxygensat profile's code, and the one we store
        [spo2] = await search(code)
        assert [c["code"] for c in spo2["code"]["coding"]] == ["2708-6", "59408-5"]

    export = await client.call("GET", f"/subjects/{user}/export", role="admin")
    assert export.status == 200, export.body
    exported = [e["resource"] for e in export.body["entry"]]
    assert sorted(o["id"] for o in exported) == sorted([o["id"] for o in everything] + [spo2["id"]])
    assert all(vital_sign_problems(o) == [] for o in exported)
