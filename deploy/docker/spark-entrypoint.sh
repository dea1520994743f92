#!/bin/bash
# Entrypoint of the spark image (docker build --target spark; see the Dockerfile).
#
# Spark on Kubernetes starts each executor pod from the image with the one argument `executor`
# and describes the executor in SPARK_* environment variables (driver URL, executor id, cores,
# memory, application id, pod IP and name; its JVM options as SPARK_JAVA_OPT_0, _1, ...: Spark's
# start-up settings and spark.executor.extraJavaOptions, which carries the --add-opens flags
# Spark needs on Java 17).
# This script turns that into the executor JVM: Spark's own jars from the pyspark wheel
# ($SPARK_HOME/jars) plus the Kafka connector jars ($SPARK_EXTRA_CLASSPATH). The executor's
# Python workers are this image's python with the project installed (PYSPARK_PYTHON, set by
# the driver). Any other command runs as given: the driver Job runs
# `python -m batch replay --engine spark --master k8s://... TOPIC START END`.
# Checked by tests/deploy/test_docker_image.py.
set -euo pipefail

if [[ "${1:-}" != "executor" ]]; then
  exec "$@"
fi

: "${SPARK_HOME:?SPARK_HOME must name the pyspark package folder}"
for required in SPARK_DRIVER_URL SPARK_EXECUTOR_ID SPARK_EXECUTOR_CORES SPARK_EXECUTOR_MEMORY \
                SPARK_APPLICATION_ID SPARK_EXECUTOR_POD_IP SPARK_EXECUTOR_POD_NAME; do
  if [[ -z "${!required:-}" ]]; then
    echo "healthmate-spark-entrypoint: $required is not set (is this pod started by a Spark driver?)" >&2
    exit 2
  fi
done

java_opts=()
while IFS= read -r name; do
  java_opts+=("${!name}")
done < <(compgen -e | grep '^SPARK_JAVA_OPT_[0-9]*$' | sort -t_ -k4 -n || true)

# SPARK_CONF_DIR (Spark mounts the executor's configuration there), spark.executor.extraClassPath
# (SPARK_CLASSPATH), Spark's jars, the connector, then the working directory (where the executor
# fetches the driver's added jars).
classpath="${SPARK_CONF_DIR:-$SPARK_HOME/conf}:${SPARK_CLASSPATH:+$SPARK_CLASSPATH:}$SPARK_HOME/jars/*"
classpath="$classpath:${SPARK_EXTRA_CLASSPATH:-}:$PWD"

exec java "${java_opts[@]}" -Xms"$SPARK_EXECUTOR_MEMORY" -Xmx"$SPARK_EXECUTOR_MEMORY" -cp "$classpath" \
  org.apache.spark.scheduler.cluster.k8s.KubernetesExecutorBackend \
  --driver-url "$SPARK_DRIVER_URL" \
  --executor-id "$SPARK_EXECUTOR_ID" \
  --cores "$SPARK_EXECUTOR_CORES" \
  --app-id "$SPARK_APPLICATION_ID" \
  --hostname "$SPARK_EXECUTOR_POD_IP" \
  --resourceProfileId "${SPARK_RESOURCE_PROFILE_ID:-0}" \
  --podName "$SPARK_EXECUTOR_POD_NAME"
