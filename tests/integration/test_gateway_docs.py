"""docs/how-to/gateway.md runs as written: its token commands mint the tokens, and every curl
example answers the status (and counts) shown under it, against a real gateway and Kafka."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from gateway_support import GatewayProcess, running_gateway
from pipeline_support import ROOT, end_offsets

pytestmark = pytest.mark.integration

DOC = ROOT / "docs" / "how-to" / "gateway.md"


def bash_blocks() -> list[str]:
    return re.findall(r"```bash\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)


def examples() -> list[tuple[str, str]]:
    """(command, expected line) of every block that calls curl."""
    found = []
    for block in bash_blocks():
        if "curl" not in block:
            continue
        command, _, expected = block.partition("\n# -> ")
        found.append((command.strip(), expected.strip()))
    return found


@pytest.fixture
async def gateway(create_topics, kafka_bootstrap: str, unique_name: str, tmp_path: Path
                  ) -> AsyncIterator[GatewayProcess]:
    topic = f"{unique_name}.raw"
    await create_topics([topic], partitions=2)
    env = {"HEALTHMATE_DEV_MODE": "true", "HEALTHMATE_RAW_TOPIC": topic,
           "HEALTHMATE_KAFKA_BOOTSTRAP": kafka_bootstrap}
    async with running_gateway(env, tmp_path / "gateway.log") as process:
        yield process


def shell_env(gateway: GatewayProcess) -> dict[str, str]:
    return {**gateway.env, "GATEWAY": gateway.base,
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}


def test_the_doc_has_an_example_per_form() -> None:
    commands = " ".join(command for command, _ in examples())
    for marker in ('"metric"', '"batch_id"', '"oxygen_saturation"', '"header"', '"resourceType"',
                   "application/x-ndjson", "Content-Encoding: gzip", "-d '["):
        assert marker in commands, marker


async def test_every_example_answers_as_documented(gateway: GatewayProcess) -> None:
    env = shell_env(gateway)
    [tokens] = [b for b in bash_blocks() if "python -m web token" in b]
    minted = subprocess.run(["bash", "-c", f'{tokens}\necho "$TOKEN"; echo "$PARTNER"'], env=env, cwd=ROOT,
                            capture_output=True, text=True, check=True, timeout=60).stdout.split()
    env["TOKEN"], env["PARTNER"] = minted[-2:]
    accepted = 0
    for command, expected in examples():
        result = subprocess.run(["bash", "-c", command + " -w '\\n%{http_code}'"], env=env, cwd=ROOT,
                                capture_output=True, text=True, check=True, timeout=60)
        body, _, status = result.stdout.rpartition("\n")
        assert status == expected.split()[0], (command, result.stdout)
        answer = json.loads(body)
        for field in ("accepted", "readings"):
            shown = re.search(rf'"{field}":(\d+)', expected)
            if shown:
                assert answer[field] == int(shown.group(1)), (command, answer)
        if status == "202":  # every example is a reading the worker stores: each has its id
            assert all(answer["event_ids"]) and answer["readings"] == sum(map(len, answer["event_ids"]))
            accepted += answer["accepted"]
    ends = await end_offsets(gateway.env["HEALTHMATE_KAFKA_BOOTSTRAP"], gateway.env["HEALTHMATE_RAW_TOPIC"])
    assert sum(ends.values()) == accepted > 0
