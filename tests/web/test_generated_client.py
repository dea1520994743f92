"""Every route generates with a standard client generator, and the generated client works.

openapi-python-client 0.29.1 runs in a throwaway venv of its own (``scripts/oapc_venv.sh``:
its pins, httpx<0.29 and typer<0.28, conflict with ours) on the document the running worker
serves. No endpoint may be skipped and no model duplicated; the generated package then
reads the pipeline status and registers an ETL job on that worker.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from pipeline_support import ROOT

pytestmark = pytest.mark.integration

GENERATOR_WARNINGS = ("skipped", "will not be generated", "duplicate models", "Unable to parse")

CALLS = """
import json, sys
sys.path.insert(0, sys.argv[1])
from health_mate_pipeline_api_client import AuthenticatedClient
from health_mate_pipeline_api_client.api.etl_jobs import etl_jobs_create, etl_jobs_get
from health_mate_pipeline_api_client.api.pipeline import pipeline_status
from health_mate_pipeline_api_client.models import ETLJobConfig

base, viewer, operator, name = sys.argv[2:6]
with AuthenticatedClient(base_url=base, token=viewer, raise_on_unexpected_status=True) as c:
    status = pipeline_status.sync_detailed(client=c)
with AuthenticatedClient(base_url=base, token=operator, raise_on_unexpected_status=True) as c:
    body = ETLJobConfig(job_name=name, target_tables=["aggregated_health_metrics"])
    created = etl_jobs_create.sync_detailed(client=c, body=body)
    got = etl_jobs_get.sync_detailed(client=c, job_id=created.parsed.job_id)
print(json.dumps({"status": [status.status_code, type(status.parsed).__name__],
                  "created": [created.status_code, type(created.parsed).__name__, created.parsed.job_name,
                              created.parsed.job_id],
                  "got": [got.status_code, got.parsed.to_dict()["job"]["job_name"]]}))
"""


@pytest.fixture(scope="session")
def generator_python() -> Path:
    env = {**os.environ}
    if "OAPC_WHEEL_DIR" not in env and Path("/tmp/oapc").is_dir():
        env["OAPC_WHEEL_DIR"] = "/tmp/oapc"  # a downloaded wheel, if there is one
    done = subprocess.run(["bash", str(ROOT / "scripts" / "oapc_venv.sh")], capture_output=True, text=True,
                          env=env, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return Path(done.stdout.strip().splitlines()[-1])


async def test_the_served_document_generates_a_full_working_client(client, api_worker, generator_python,
                                                                   tmp_path) -> None:  # type: ignore[no-untyped-def]
    served = await client.call("GET", "/openapi.json", role="viewer")
    assert served.status == 200
    document = tmp_path / "openapi.json"
    document.write_text(json.dumps(served.body))
    operations = {(m.upper(), p) for p, ops in served.body["paths"].items() for m in ops}

    bin_dir = generator_python.parent
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    generated = subprocess.run(
        [str(bin_dir / "openapi-python-client"), "generate", "--path", str(document), "--meta", "none",
         "--output-path", str(tmp_path / "client")],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300, check=False)
    output = generated.stdout + generated.stderr
    assert generated.returncode == 0, output
    assert not [w for w in GENERATOR_WARNINGS if w.lower() in output.lower()], output

    package = tmp_path / "client"
    modules = {p.stem for p in (package / "api").rglob("*.py") if p.stem != "__init__"}
    assert len(modules) == len(operations), (sorted(modules), sorted(operations))

    (tmp_path / "pkg").mkdir()
    (package).rename(tmp_path / "pkg" / "health_mate_pipeline_api_client")
    name = f"generated_{uuid.uuid4().hex[:8]}"
    ran = subprocess.run(
        [str(generator_python), "-c", CALLS, str(tmp_path / "pkg"), api_worker.base_url,
         api_worker.token("viewer"), api_worker.token("operator"), name],
        capture_output=True, text=True, timeout=120, check=False)
    assert ran.returncode == 0, ran.stderr[-3000:]
    answers = json.loads(ran.stdout.strip().splitlines()[-1])
    assert answers["status"] == [200, "PipelineStatus"]
    assert answers["created"][:3] == [201, "ETLJobConfig", name]
    assert answers["got"] == [200, name]
    assert sys.executable != str(generator_python)  # the generator never ran in our own venv
