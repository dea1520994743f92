# HealthMate Pipeline images, two targets of one build:
#
#   docker build -t healthmate-pipeline:0.1.0 .                              # the worker (default)
#   docker build --target spark -t healthmate-pipeline-spark:0.1.0 .         # + Java, pyspark, jars
#
# The worker image runs `python -m streams worker` (Kafka -> Faust -> PostgreSQL), serving
# GET /health and GET /metrics on HEALTHMATE_WEB_PORT (6066). The spark image is the same
# image plus a Java runtime, the `spark` extra (pyspark) and the Kafka connector jars in
# HEALTHMATE_SPARK_JARS_DIR: it runs Spark backfills on Kubernetes, both the driver (the Job
# k8s/jobs/spark-backfill-job.yaml) and the executor pods Spark starts from it.
#
# All configuration comes from HEALTHMATE_* environment variables (streams/config.py);
# secrets (HEALTHMATE_PSEUDONYM_KEY, HEALTHMATE_PG_DSN) are given at run time, never baked in.
# Checked by tests/deploy/test_docker_image.py.
FROM python:3.11-slim-bookworm AS base

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# Non-root runtime user with a fixed uid/gid (k8s runAsUser/fsGroup use 10001).
# /var/lib/healthmate is the working directory, so Faust's data dir (local table state) lands
# there; docker-compose.yml and the k8s StatefulSet mount a volume on it.
RUN groupadd --system --gid 10001 healthmate \
 && useradd --system --uid 10001 --gid healthmate --home-dir /var/lib/healthmate \
        --no-create-home --shell /usr/sbin/nologin healthmate \
 && install -d -o healthmate -g healthmate -m 0750 /var/lib/healthmate

WORKDIR /build

# Pinned runtime dependencies first, so this layer is reused until pyproject.toml changes.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
 && pip install -r /tmp/requirements.txt \
 && rm /tmp/requirements.txt

# Then the project itself (no dependency resolution: they are all installed above).
COPY README.md ./
COPY streams ./streams
COPY batch ./batch
COPY web ./web
COPY healthmate ./healthmate
RUN pip install --no-deps . \
 && rm -rf /build

COPY deploy/docker/healthcheck.py /usr/local/bin/healthmate-healthcheck

# Inside a container the web server must listen on all interfaces to be scraped and probed.
ENV HEALTHMATE_WEB_HOST=0.0.0.0 \
    HEALTHMATE_WEB_PORT=6066

WORKDIR /var/lib/healthmate

# ---- Spark's Kafka connector jars, from Maven Central (scripts/spark/pom.xml, as batch/spark_jars.py
# fetches them locally). Keep SPARK_VERSION in step with batch/spark_jars.py and the pyspark pin.
FROM maven:3.9-eclipse-temurin-17 AS spark-jars
ARG SPARK_VERSION=4.2.0
COPY scripts/spark/pom.xml /build/pom.xml
RUN mvn -q -B -f /build/pom.xml dependency:copy-dependencies -DincludeScope=runtime \
        -Dspark.version=${SPARK_VERSION} -DoutputDirectory=/spark-jars/${SPARK_VERSION}

# ---- spark: the worker image + a Java runtime (Spark 4 needs 17+), pyspark and the connector jars.
FROM base AS spark
ARG SPARK_VERSION=4.2.0
USER root
RUN apt-get update \
 && apt-get install -y --no-install-recommends openjdk-17-jre-headless \
 && rm -rf /var/lib/apt/lists/*
# The `spark` extra of pyproject.toml (pinned pyspark), as `pip install .[spark]` would add it.
COPY pyproject.toml /tmp/pyproject.toml
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('/tmp/pyproject.toml', 'rb'))['project']['optional-dependencies']['spark']))" \
        > /tmp/spark-requirements.txt \
 && pip install -r /tmp/spark-requirements.txt \
 && rm /tmp/spark-requirements.txt /tmp/pyproject.toml
COPY --from=spark-jars /spark-jars /opt/healthmate/spark-jars
COPY deploy/docker/spark-entrypoint.sh /usr/local/bin/healthmate-spark-entrypoint
# SPARK_HOME: the pyspark wheel holds Spark's jars; the executor entrypoint reads it.
ENV HEALTHMATE_SPARK_JARS_DIR=/opt/healthmate/spark-jars \
    SPARK_HOME=/usr/local/lib/python3.11/site-packages/pyspark \
    SPARK_EXTRA_CLASSPATH=/opt/healthmate/spark-jars/${SPARK_VERSION}/*
USER 10001:10001
# `executor` (what Spark on Kubernetes starts executor pods with) runs a Spark executor; any other
# command runs as given (the driver: python -m batch replay --engine spark --master k8s://...).
ENTRYPOINT ["/usr/local/bin/healthmate-spark-entrypoint"]
CMD ["python", "-m", "batch", "replay", "--help"]

# ---- the worker (the default target: the last stage).
FROM base AS worker
USER 10001:10001
EXPOSE 6066

# /health answers 503 while Kafka or PostgreSQL is unreachable; start-period covers startup.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "/usr/local/bin/healthmate-healthcheck"]

CMD ["python", "-m", "streams", "worker"]
