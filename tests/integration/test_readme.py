"""Every command README.md and the docs site show runs on the local stack (the list, and
the order: tests/readme_commands.py).

The commands run as a person would type them, from the repository root with its
``.venv``, in one bash session, against a worker of their own: unique topics, schema, app
id, consumer group, web port and Airflow home, passed through the ``HEALTHMATE_*``
variables the documented commands honour. Skipped blocks must say why.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import time
import urllib.request
from datetime import UTC, datetime

import pytest
from pipeline_support import ROOT, WorkerProcess, drop_pipeline_resources, free_port
from readme_commands import WIRE_CONTRACT, all_blocks, blocks, runnable, shell_script

from streams.config import Settings
from streams.domain import Rules, process_message
from streams.records import MessageContext
from streams.setup import create_topics

pytestmark = [pytest.mark.integration, pytest.mark.slow]
VENV_PYTHON = ROOT / ".venv" / "bin" / "python"


def test_every_block_is_run_or_says_why_not():
    found = all_blocks()
    assert len(runnable(found)) >= 5
    assert "README.md" in {b.where for b in found}, "the README's blocks are read"
    assert any(b.where.startswith("docs/") for b in runnable(found)), "the docs' blocks are read"
    for b in found:
        assert b.skip_reason is None or len(b.skip_reason) > 10, f"{b.where}:{b.line}: say why it is skipped"


def test_wire_examples_are_accepted_and_the_first_two_agree():
    """Every JSON example of the wire contract is a message the pipeline stores; the single reading and the
    envelope (the first two) name the same instant, as the wire contract page says."""
    examples = [b for b in blocks(WIRE_CONTRACT) if b.lang == "json"]
    assert len(examples) >= 2
    ctx = MessageContext("raw", 0, 0, datetime(2026, 11, 26, 10, 5, tzinfo=UTC))
    instants = []
    for example in examples:
        outcome = process_message(example.text.encode(), ctx, Rules.default(b"readme-key"))
        assert outcome.dead_letters == [], f"{example.where}:{example.line}: {outcome.dead_letters}"
        assert outcome.readings, f"{example.where}:{example.line}: nothing stored"
        instants.append({r.measured_at for r in outcome.readings})
    assert instants[0] == instants[1] == {datetime(2026, 11, 26, 10, tzinfo=UTC)}, instants[:2]


def _env(name: str, tmp_path) -> dict[str, str]:  # type: ignore[no-untyped-def]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HEALTHMATE_", "AIRFLOW"))}
    env.update({
        "PYTHONPATH": str(ROOT), "HEALTHMATE_APP_ID": f"hm-{name}", "HEALTHMATE_RAW_TOPIC": f"{name}.raw",
        "HEALTHMATE_DLQ_TOPIC": f"{name}.dlq", "HEALTHMATE_CONSUMER_GROUP": f"{name}-sink",
        "HEALTHMATE_WAREHOUSE_SCHEMA": name, "HEALTHMATE_WEB_PORT": str(free_port()),
        "HEALTHMATE_DATA_DIR": str(tmp_path / "data"), "HEALTHMATE_AIRFLOW_HOME": str(tmp_path / "airflow"),
        "HEALTHMATE_KAFKA_BOOTSTRAP": os.environ.get("HEALTHMATE_KAFKA_BOOTSTRAP", "127.0.0.1:29092"),
        "HEALTHMATE_PG_DSN": os.environ.get(
            "HEALTHMATE_PG_DSN", "postgresql://healthmate:healthmate@127.0.0.1:5432/healthmate"),
    })
    return env


def test_every_documented_command_runs(unique_name, tmp_path):  # type: ignore[no-untyped-def]
    assert VENV_PYTHON.exists(), "the documented commands use .venv: run `make venv` first"
    env = _env(unique_name, tmp_path)
    settings = Settings(dev_mode=True, **{k.removeprefix("HEALTHMATE_").lower(): v for k, v in env.items()
                                          if k.startswith("HEALTHMATE_") and k != "HEALTHMATE_AIRFLOW_HOME"})
    asyncio.run(create_topics(settings))
    worker = WorkerProcess(env, tmp_path / "worker.log")
    worker.start()
    try:
        _wait_ready(worker, env["HEALTHMATE_WEB_PORT"])
        found = all_blocks()
        script = tmp_path / "readme.sh"
        script.write_text(shell_script(found))
        result = subprocess.run(["bash", str(script)], cwd=ROOT, env=env, capture_output=True, text=True,
                                timeout=900)
        ran = [line for line in result.stderr.splitlines() if line.startswith("### ")]
        assert result.returncode == 0, (f"documented command failed in block {ran[-1] if ran else '?'}:\n"
                                        f"{result.stdout[-3000:]}\n{result.stderr[-5000:]}")
        assert ran == [f"### {b.where}:{b.line}" for b in runnable(found)]
        # The API page's dry-run redrive (curl prints no newline, so the next output may follow it).
        start = result.stdout.rfind('{"scanned"', 0, result.stdout.index('"would_refeed"'))
        redrive, _ = json.JSONDecoder().raw_decode(result.stdout[start:])
        assert redrive["dry_run"] is True and redrive["refed"] == 0
    finally:
        worker.stop()
        asyncio.run(drop_pipeline_resources(settings))


def _wait_ready(worker: WorkerProcess, port: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert worker.alive(), worker.log_path.read_text(errors="replace")[-3000:]
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.3)
    raise AssertionError("worker not ready")
