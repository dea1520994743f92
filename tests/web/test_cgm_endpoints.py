"""CGM over HTTP on the live test worker: the job target ``cgm`` run through the API, then
``GET /cgm/{user_id}`` and ``/cgm/{user_id}/agp`` (analyst): the rows as stored, the AGP
percentiles against an independent computation (``statistics.quantiles``, linear
interpolation), answers as the OpenAPI document declares them, the id pseudonymised
everywhere (audit row, answers, errors)."""

from __future__ import annotations

import statistics
import uuid
from collections import defaultdict
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from cgm_reference import window
from cgm_support import END, ZONE, compute_over_http, fortnight, seed_worker
from jsonschema import Draft202012Validator

from streams.sink.migrations import quote_ident

pytestmark = pytest.mark.integration


def declared(document: dict[str, Any], template: str, status: int) -> Draft202012Validator:
    op = document["paths"]["/data-pipeline" + template]["get"]
    [content] = op["responses"][str(status)]["content"].values()
    return Draft202012Validator({**content["schema"], "components": document["components"]})


def quantiles(values: list[float]) -> list[float]:
    """5th, 25th, 50th, 75th and 95th percentiles, linear interpolation between order statistics."""
    if len(values) == 1:
        return values * 5
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return [cuts[p - 1] for p in (5, 25, 50, 75, 95)]


async def test_cgm_summary_and_agp_for_an_analyst(client, api_worker, pg, eventually) -> None:  # type: ignore[no-untyped-def]
    person = fortnight(f"cgm-{uuid.uuid4().hex[:8]}")
    key = await seed_worker(api_worker.settings, person)
    await compute_over_http(client, eventually, END - timedelta(days=13), END)
    document = (await client.call("GET", "/openapi.json", role="viewer")).body

    assert (await client.call("GET", f"/cgm/{person.name}", role="viewer")).status == 403
    reply = await client.call("GET", f"/cgm/{person.name}", role="analyst")
    assert reply.status == 200, reply.body
    assert not list(declared(document, "/cgm/{user_id}", 200).iter_errors(reply.body))
    body = reply.body
    assert body["user_key"] == key and person.name not in str(body)
    assert (body["from"], body["to"]) == (str(END - timedelta(days=13)), str(END))
    s = quote_ident(api_worker.settings.warehouse_schema)
    stored = await pg.fetch(f"SELECT * FROM {s}.cgm_daily WHERE user_key = $1 ORDER BY local_day", key)
    assert len(stored) == 13
    assert [d["local_day"] for d in body["days"]] == [str(r["local_day"]) for r in stored]
    assert [d["in_range_pct"] for d in body["days"]] == [r["in_range_pct"] for r in stored]
    last = body["windows"][-1]
    want = window(person.seen, ZONE, END)
    assert last["local_day"] == str(END) and last["readings"] == want["readings"] == len(person.seen)
    assert abs(last["mean_mg_dl"] - want["mean_mg_dl"]) < 1e-9 and last["days_with_data"] == 13
    narrow = await client.call("GET", f"/cgm/{person.name}", role="analyst",
                               params={"from": str(END - timedelta(days=1)), "to": str(END)})
    assert [d["local_day"] for d in narrow.body["days"]] == [str(END - timedelta(days=1)), str(END)]

    agp = await client.call("GET", f"/cgm/{person.name}/agp", role="analyst", params={"bin_minutes": "60"})
    assert agp.status == 200, agp.body
    assert not list(declared(document, "/cgm/{user_id}/agp", 200).iter_errors(agp.body))
    by_hour: dict[int, list[float]] = defaultdict(list)
    for at, value, _ in person.seen:
        by_hour[at.astimezone(ZoneInfo(ZONE)).hour].append(value)
    assert [b["minute"] for b in agp.body["bins"]] == [60 * h for h in sorted(by_hour)]
    for b in agp.body["bins"]:
        values = by_hour[b["minute"] // 60]
        assert b["readings"] == len(values)
        got = [b[f"p{p}"] for p in (5, 25, 50, 75, 95)]
        assert all(abs(g - w) < 1e-9 for g, w in zip(got, quantiles(values), strict=True)), b
    assert agp.body["window"]["local_day"] == str(END)

    audit = await pg.fetch(f"SELECT target FROM {s}.audit_log WHERE action LIKE 'cgm.%'")
    # Other tests of the session audit other people's calls: this person's are the ones by key.
    mine = [r["target"] for r in audit if key in r["target"]]
    assert len(mine) >= 3 and not any(person.name in r["target"] for r in audit)


async def test_cgm_errors_never_echo_the_id(client) -> None:  # type: ignore[no-untyped-def]
    nobody = f"nobody-{uuid.uuid4().hex}"
    for path in (f"/cgm/{nobody}", f"/cgm/{nobody}/agp"):
        missing = await client.call("GET", path, role="analyst")
        assert missing.status == 404 and nobody not in str(missing.body), missing.body
    backwards = {"from": "2026-02-02", "to": "2026-02-01"}
    bad = await client.call("GET", f"/cgm/{nobody}", role="analyst", params=backwards)
    assert bad.status == 422 and nobody not in str(bad.body)
    odd = await client.call("GET", f"/cgm/{nobody}/agp", role="analyst", params={"bin_minutes": "7"})
    assert odd.status == 422 and nobody not in str(odd.body)
