"""The console page in a real headless Chromium (Debian's ``chromium`` + ``chromium-driver``,
driven by Selenium) against the live test worker.

The worker is not in dev mode, so the test pastes an operator token as a person would. It
checks every panel against data it put there itself (a partition, a metric's quality, a
dead-letter reason with its dry-run redrive, a job with its run; the last hour's charts and
a metric's quality chart; no negative age) and saves a screenshot to
``.stack/screenshots/console.png``. The page's CSP must hold: the browser console may show
no CSP violation or script error.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

pytestmark = pytest.mark.integration

SCREENSHOT = Path(__file__).resolve().parents[2] / ".stack" / "screenshots" / "console.png"


def _text(driver, element_id: str) -> str:  # type: ignore[no-untyped-def]
    return driver.find_element(By.ID, element_id).text


def _values(driver, element_id: str) -> int:  # type: ignore[no-untyped-def]
    """How many values a chart drew (its ``data-values``; 0 before it is drawn)."""
    return int(driver.find_element(By.ID, element_id).get_attribute("data-values") or 0)


async def test_console_shows_every_panel_and_redrives(browser, client, api_worker, produce, make_reading,
                                                      now, eventually):  # type: ignore[no-untyped-def]
    tag = uuid.uuid4().hex[:8]
    for i in range(5):
        await produce(make_reading(f"con-{tag}-{i}", at=now - timedelta(minutes=2), value=70 + i))
    await produce(make_reading(f"con-{tag}-bad", at=now - timedelta(minutes=2), unit="furlongs"))
    # A burst in one go: a quality window that holds enough records to be judged (20 by default).
    await asyncio.gather(*(produce(make_reading(f"con-{tag}-burst-{i}", at=now - timedelta(minutes=1),
                                                value=60 + i % 20)) for i in range(30)))
    # Stored before the job starts: a run opening the warehouse while the worker creates a
    # partition can make PostgreSQL answer "tuple concurrently updated" (reported separately).
    await eventually(lambda: _dead(client, "unknown_unit"))
    name = f"console_{tag}"
    created = await client.call("POST", "/etl-jobs", role="operator", json={
        "job_name": name, "target_tables": ["aggregated_health_metrics"], "notification_on_failure": False})
    assert created.status == 201, created.body
    started = await client.call("POST", f"/etl-jobs/{created.body['job_id']}/run", role="operator", json={
        "interval_start": (now - timedelta(days=1)).isoformat(), "interval_end": now.isoformat()})
    assert started.status == 202

    page = await client.call("GET", "/data-pipeline/console")
    assert page.status == 200 and "script-src 'self'" in page.headers["Content-Security-Policy"]
    assert "'unsafe-inline'" not in page.headers["Content-Security-Policy"]

    def drive() -> dict[str, str]:
        browser.get(f"{api_worker.base_url}/data-pipeline/console")
        browser.find_element(By.ID, "token").send_keys(api_worker.token("operator", sub="console-test"))
        browser.find_element(By.CSS_SELECTOR, "#token-form button").click()
        wait = WebDriverWait(browser, 30, poll_frequency=0.3)
        wait.until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-loaded") == "true")
        wait.until(lambda d: name in _text(d, "job-rows") and "heart_rate" in _text(d, "quality-rows"))
        # The charts: the last hour's bars, and heart_rate's score over its closed windows.
        wait.until(lambda d: _values(d, "chart-throughput") > 0 and _values(d, "chart-dead-letters") > 0)
        wait.until(lambda d: _values(d, "quality-chart-heart_rate") > 0)  # a judged window: a point
        dry_run = 'button[data-reason="unknown_unit"][data-dry-run="true"]'
        browser.find_element(By.CSS_SELECTOR, dry_run).click()
        wait.until(lambda d: "would re-feed" in _text(d, "redrive-result"))
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        browser.save_screenshot(str(SCREENSHOT))
        panels = ("pipeline-status", "throughput", "partitions", "quality-rows", "dlq-rows", "redrive-result",
                  "job-rows", "error", "auth-state")
        texts = {i: _text(browser, i) for i in panels}
        heart = browser.find_element(By.ID, "quality-chart-heart_rate")
        texts["heart_marks"] = str(len(heart.find_elements(By.CSS_SELECTOR, "circle")))
        bars = browser.find_elements(By.CSS_SELECTOR, "#chart-throughput rect.value")
        texts["throughput_bars"] = str(len(bars))
        texts["quality-charts"] = _text(browser, "quality-charts")
        texts["log"] = "\n".join(e["message"] for e in browser.get_log("browser") if e["level"] == "SEVERE")
        return texts

    texts = await asyncio.to_thread(drive)
    assert texts["auth-state"] == "pasted token" and texts["error"] == "", texts
    assert texts["pipeline-status"] in ("ok", "degraded")
    assert api_worker.settings.raw_topic in texts["partitions"], texts["partitions"]
    assert "readings/s" in texts["throughput"]
    assert "heart_rate" in texts["quality-rows"]
    assert not re.search(r"-\d+(\.\d+)? s ago", texts["partitions"]), texts["partitions"]
    assert int(texts["throughput_bars"]) >= 1 and int(texts["heart_marks"]) >= 1, texts
    assert "heart_rate: score of the last" in texts["quality-charts"], texts["quality-charts"]
    assert "unknown_unit" in texts["dlq-rows"]
    assert "dry run unknown_unit" in texts["redrive-result"], texts["redrive-result"]
    assert "nothing published" in texts["redrive-result"]
    assert name in texts["job-rows"] and "batch" in texts["job-rows"]
    assert texts["log"] == "", f"browser errors (CSP or script): {texts['log']}"
    assert SCREENSHOT.stat().st_size > 10_000


async def _dead(client, reason: str) -> bool:  # type: ignore[no-untyped-def]
    reply = await client.call("GET", "/dlq", role="viewer")
    return reply.status == 200 and reply.body["by_reason"].get(reason, 0) > 0
