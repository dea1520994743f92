# ruff: noqa: F811 - pytest fixtures imported from batch_support are used as parameters
"""The SSRF guard at send time: after DNS, for literals in every spelling, and no redirects.

A real aiohttp receiver listens on 127.0.0.1; the sender must not reach it unless the
allow-list names it, whatever the URL's spelling or the name that resolves to it.
"""

from __future__ import annotations

import socket
from datetime import timedelta
from typing import Any

import pytest
from aiohttp import web
from pipeline_support import free_port

from batch import api
from batch.notify import post_summary
from batch.outbound import GuardedResolver, outbound_session

pytestmark = [pytest.mark.integration]


@pytest.fixture
async def receiver():  # type: ignore[no-untyped-def]
    hits: list[str] = []

    async def hook(request: web.Request) -> web.Response:
        hits.append(request.path)
        return web.Response(status=204)

    async def moved(request: web.Request) -> web.Response:
        hits.append(request.path)
        raise web.HTTPTemporaryRedirect("/hook")

    app = web.Application()
    app.router.add_post("/hook", hook)
    app.router.add_post("/moved", moved)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield port, hits
    await runner.cleanup()


def _local_name() -> str:
    """A name of this machine other than ``localhost`` that DNS/hosts resolve to loopback."""
    name = socket.gethostname()
    assert socket.gethostbyname(name).startswith("127."), "test needs a host name on loopback"
    return name


async def test_loopback_in_every_spelling_and_by_name_is_not_posted_to(receiver) -> None:
    port, hits = receiver
    urls = [f"http://{h}:{port}/hook" for h in (
        "127.0.0.1", "2130706433", "0x7f000001", "0177.0.0.1", "127.1", "[::ffff:127.0.0.1]",
        "localhost", _local_name())]
    async with outbound_session(()) as session:
        for url in urls:
            assert await post_summary(session, url, {"n": 1}, timeout_s=2) is False, url
    assert hits == []


async def test_the_allow_list_opens_its_host_but_not_other_names_for_it(receiver) -> None:
    port, hits = receiver
    allow = ("127.0.0.1",)
    async with outbound_session(allow) as session:
        assert await post_summary(session, f"http://127.0.0.1:{port}/hook", {}, timeout_s=2,
                                  allow_hosts=allow)
        assert not await post_summary(session, f"http://{_local_name()}:{port}/hook", {}, timeout_s=2,
                                      allow_hosts=allow)
    assert hits == ["/hook"]


async def test_redirects_are_not_followed(receiver) -> None:
    port, hits = receiver
    allow = ("127.0.0.1",)
    async with outbound_session(allow) as session:
        assert not await post_summary(session, f"http://127.0.0.1:{port}/moved", {}, timeout_s=2,
                                      allow_hosts=allow)
    assert hits == ["/moved"]


async def test_the_resolver_refuses_names_that_resolve_to_loopback() -> None:
    with pytest.raises(OSError, match="loopback"):
        await GuardedResolver(()).resolve("localhost", 80)
    answers = await GuardedResolver(("localhost",)).resolve("localhost", 80)
    assert answers and all(a["host"] in ("127.0.0.1", "::1") for a in answers)


async def test_the_job_runner_does_not_post_to_an_internal_webhook(batch_settings, warehouse, seeded, day0,
                                                                   receiver) -> None:
    port, hits = receiver
    strict = batch_settings.model_copy(update={"outbound_allow_hosts": ""})
    one_day = (day0, day0 + timedelta(days=1))
    base: dict[str, Any] = {"target_tables": ["user_engagement"], "notification_on_success": True}
    for i, host in enumerate(("127.0.0.1", "0x7f000001", _local_name())):
        job = await api.create_job(warehouse, {"job_name": f"ssrf_{i}", **base,
                                               "notification_webhook_url": f"http://{host}:{port}/hook"})
        run = await api.run_job(strict, job.job_id, warehouse=warehouse, interval=one_day)
        assert run.status == "succeeded"
    assert hits == []
    allowed = await api.create_job(warehouse, {"job_name": "ssrf_ok", **base,
                                               "notification_webhook_url": f"http://127.0.0.1:{port}/hook"})
    await api.run_job(batch_settings, allowed.job_id, warehouse=warehouse, interval=one_day)
    assert hits == ["/hook"]
