"""The jars Spark's Kafka source needs beyond the pyspark wheel, fetched from Maven Central once.

``mvn dependency:copy-dependencies`` of ``scripts/spark/pom.xml`` into
``<HEALTHMATE_SPARK_JARS_DIR>/<SPARK_VERSION>/``, the way ``scripts/stack.sh`` fetches the
Kafka broker's jars. A folder that holds the connector jar counts as complete (the copy goes to
a temporary folder first and is renamed into place, so an interrupted fetch leaves nothing).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from batch.errors import SparkUnavailable

#: Keep in step with the pyspark pin in pyproject.toml and scripts/spark/pom.xml.
SPARK_VERSION = "4.2.0"
CONNECTOR = f"spark-sql-kafka-0-10_2.13-{SPARK_VERSION}.jar"
POM = Path(__file__).resolve().parents[1] / "scripts" / "spark" / "pom.xml"


def connector_jars(jars_dir: str | Path) -> list[Path]:
    """The connector's jars, fetched into ``jars_dir/<version>`` when missing."""
    target = Path(jars_dir).resolve() / SPARK_VERSION
    if not (target / CONNECTOR).is_file():
        _fetch(target)
    return sorted(target.glob("*.jar"))


def _fetch(target: Path) -> None:
    mvn = shutil.which("mvn")
    if mvn is None or not POM.is_file():
        raise SparkUnavailable(f"the Kafka connector jars are not in {target} and cannot be fetched "
                               "(needs Maven and scripts/spark/pom.xml): run `make deps`, or fetch "
                               f"org.apache.spark:spark-sql-kafka-0-10_2.13:{SPARK_VERSION} there")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".fetch-", dir=target.parent))
    try:
        result = subprocess.run(
            [mvn, "-q", "-B", "-f", str(POM), "dependency:copy-dependencies", "-DincludeScope=runtime",
             f"-Dspark.version={SPARK_VERSION}", f"-DoutputDirectory={staging}"],
            capture_output=True, text=True, timeout=600, check=False)
        if result.returncode != 0 or not (staging / CONNECTOR).is_file():
            tail = (result.stdout + result.stderr).strip().splitlines()[-1:] or ["no output"]
            raise SparkUnavailable(f"fetching the Spark Kafka connector failed: {tail[0][:200]}")
        try:
            os.rename(staging, target)
        except OSError:  # another process put it there first
            if not (target / CONNECTOR).is_file():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
