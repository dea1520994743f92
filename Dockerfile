# HealthMate Pipeline worker image: `python -m streams worker` (Kafka -> Faust -> PostgreSQL),
# serving GET /health and GET /metrics on HEALTHMATE_WEB_PORT (6066).
#
#   docker build -t healthmate-pipeline:0.1.0 .
#
# All configuration comes from HEALTHMATE_* environment variables (streams/config.py);
# secrets (HEALTHMATE_PSEUDONYM_KEY, HEALTHMATE_PG_DSN) are given at run time, never baked in.
# Checked by tests/deploy/test_docker_image.py.
FROM python:3.11-slim-bookworm

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

USER 10001:10001
WORKDIR /var/lib/healthmate
EXPOSE 6066

# /health answers 503 while Kafka or PostgreSQL is unreachable; start-period covers startup.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "/usr/local/bin/healthmate-healthcheck"]

CMD ["python", "-m", "streams", "worker"]
