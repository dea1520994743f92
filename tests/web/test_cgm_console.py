"""The console's CGM report in a real headless Chromium (Debian's chromium + chromium-driver,
driven by Selenium, as tests/web/test_console_browser.py) against the live test worker: for
a person chosen by user id, the AGP and the time-in-ranges bar are drawn as SVG from the
API, with the figures of the 14-day window, the id never shown, and no CSP violation or
script error. Screenshots: ``.stack/screenshots/cgm.png`` (page) and ``cgm-report.png``."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from cgm_reference import window
from cgm_support import END, ZONE, compute_over_http, fortnight, seed_worker
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

pytestmark = pytest.mark.integration
SCREENSHOTS = Path(__file__).resolve().parents[2] / ".stack" / "screenshots"


async def test_console_draws_the_agp_and_time_in_ranges(browser, client, api_worker, eventually) -> None:  # type: ignore[no-untyped-def]
    person = fortnight(f"cgm-console-{uuid.uuid4().hex[:8]}")
    key = await seed_worker(api_worker.settings, person)
    await compute_over_http(client, eventually, END - timedelta(days=13), END)
    want = window(person.seen, ZONE, END)

    def drive() -> dict[str, object]:
        browser.get(f"{api_worker.base_url}/data-pipeline/console")
        browser.find_element(By.ID, "token").send_keys(api_worker.token("analyst", sub="cgm-console-test"))
        browser.find_element(By.CSS_SELECTOR, "#token-form button").click()
        browser.find_element(By.ID, "cgm-user").send_keys(person.name)
        browser.find_element(By.CSS_SELECTOR, "#cgm-form button").click()
        wait = WebDriverWait(browser, 30, poll_frequency=0.3)
        wait.until(lambda d: d.find_element(By.ID, "cgm").get_attribute("data-drawn") == "true")
        section = browser.find_element(By.ID, "cgm")
        browser.execute_script("arguments[0].scrollIntoView()", section)
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        browser.save_screenshot(str(SCREENSHOTS / "cgm.png"))
        section.screenshot(str(SCREENSHOTS / "cgm-report.png"))
        bands = {r.get_attribute("data-band"): float(r.get_attribute("height"))
                 for r in browser.find_elements(By.CSS_SELECTOR, "#cgm-tir rect[data-band]")}
        return {
            "figures": browser.find_element(By.ID, "cgm-figures").text,
            "person": browser.find_element(By.ID, "cgm-person").text,
            "page": browser.find_element(By.TAG_NAME, "body").text,
            "polygons": len(browser.find_elements(By.CSS_SELECTOR, "#cgm-agp polygon")),
            "median": [e.get_attribute("points")
                       for e in browser.find_elements(By.CSS_SELECTOR, "#cgm-agp .agp-median")],
            "bands": bands,
            "log": "\n".join(e["message"] for e in browser.get_log("browser") if e["level"] == "SEVERE"),
        }

    seen = await asyncio.to_thread(drive)
    assert seen["log"] == "", f"browser errors (CSP or script): {seen['log']}"
    assert person.name not in str(seen["page"]) and str(seen["person"]).startswith(f"pseudonym {key[:16]}")
    assert f"{want['readings']} readings" in str(seen["figures"])
    assert f"TIR {want['in_range_pct']:.1f} %" in str(seen["figures"]), seen["figures"]
    median = seen["median"]
    assert isinstance(median, list)
    assert [len(m.split()) for m in median] == [8, 96 - 20], "15-min bins, 02-05 h off"
    assert seen["polygons"] == 2 * 2, "5-95th and 25-75th, either side of the nightly gap"
    bands = seen["bands"]
    assert isinstance(bands, dict) and abs(sum(bands.values()) - 250) < 1e-6
    assert abs(bands["in_range_pct"] - 2.5 * want["in_range_pct"]) < 1e-6
    assert (SCREENSHOTS / "cgm-report.png").stat().st_size > 10_000
