#!/usr/bin/env bash
# Validate FHIR R4 JSON files (Bundles or Observations) with HAPI FHIR's instance validator
# (the HL7 core validator), offline: every file as it is, and every Observation in it against
# the R4 vital-signs profile its LOINC code calls for. See docs/how-to/fhir-validate.md.
#
#   bash scripts/fhir_validate.sh FILE.json...
#
# Builds scripts/fhir-validator (Java 17 + Maven) when its jar is missing or older than its
# sources: the first build fetches the jars from Maven Central (~150 MB into ~/.m2), later
# builds run offline. Build output goes to stderr; stdout is the validator's report only.
# Exit status: 0 no error, 1 an error or fatal message, 2 usage, build or read error.
set -euo pipefail
DIR="$(cd "$(dirname "$0")/fhir-validator" && pwd)"
JAR="$DIR/target/fhir-validator.jar"
(($# > 0)) || { echo "usage: bash scripts/fhir_validate.sh FILE.json..." >&2; exit 2; }
command -v java >/dev/null && command -v mvn >/dev/null \
  || { echo "fhir_validate: needs java (17+) and mvn: bash scripts/install_system_deps.sh" >&2; exit 2; }
if [[ ! -f "$JAR" || "$DIR/pom.xml" -nt "$JAR" || -n "$(find "$DIR/src" -type f -newer "$JAR")" ]]; then
  echo "fhir_validate: building $DIR" >&2
  mvn -q -B -o -Dstyle.color=never -f "$DIR/pom.xml" package >&2 \
    || mvn -q -B -Dstyle.color=never -f "$DIR/pom.xml" package >&2 \
    || { echo "fhir_validate: build failed (Maven Central reachable for the first build?)" >&2; exit 2; }
fi
exec java -jar "$JAR" "$@"
