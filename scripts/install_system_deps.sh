#!/usr/bin/env bash
# Install (Debian apt) the system packages the tests need that a machine may lack:
#
#   promtool       <- prometheus               tests/deploy: promtool check config/rules, test rules
#   pg_ctlcluster  <- postgresql               scripts/stack.sh: the local PostgreSQL cluster
#   java (17+)     <- openjdk-17-jre-headless  scripts/stack.sh: runs the Kafka broker
#   mvn            <- maven                    scripts/stack.sh: fetches the Kafka jars once
#   javac          <- openjdk-17-jdk-headless  scripts/fhir_validate.sh: builds the FHIR validator
#   chromium       <- chromium                 tests/web/test_console_browser.py: headless browser
#   chromedriver   <- chromium-driver          the same test: Selenium drives chromium through it
#   kubectl        <- kubectl                  tests/deploy/test_k8s.py: kubectl kustomize cross-check
#
# Idempotent. Fast path: when every command is already there, apt is not touched at all.
# Otherwise one `apt-get update` and one `apt-get install --no-install-recommends` of what is
# missing (as root, or through sudo). Services these packages bring (prometheus, postgresql)
# are not started by the install: the tests start what they need themselves.
# Ends by printing the version of each tool; exits non-zero if one is still missing.
#
# Environment (for tests of this script): HEALTHMATE_POLICY_RC_D, path of the policy-rc.d
# file used to keep services from starting (default /usr/sbin/policy-rc.d).
set -euo pipefail

POLICY_RC_D="${HEALTHMATE_POLICY_RC_D:-/usr/sbin/policy-rc.d}"

log() { printf '[system-deps] %s\n' "$*"; }
die() { printf '[system-deps] ERROR: %s\n' "$*" >&2; exit 1; }

# command -> Debian package that provides it (bookworm: promtool is in `prometheus`).
TOOLS=(promtool pg_ctlcluster java mvn javac chromium chromedriver kubectl)
declare -A PACKAGE=(
  [promtool]=prometheus
  [pg_ctlcluster]=postgresql
  [java]=openjdk-17-jre-headless
  [mvn]=maven
  [javac]=openjdk-17-jdk-headless
  [chromium]=chromium
  [chromedriver]=chromium-driver
  [kubectl]=kubectl
)

missing_packages() {
  local tool
  for tool in "${TOOLS[@]}"; do
    command -v "$tool" >/dev/null 2>&1 || printf '%s\n' "${PACKAGE[$tool]}"
  done
}

mapfile -t missing < <(missing_packages)

if ((${#missing[@]} == 0)); then
  log "all present, apt not needed"
else
  log "installing: ${missing[*]}"
  SUDO=()
  if [[ "$(id -u)" != 0 ]]; then
    command -v sudo >/dev/null 2>&1 || die "not root and no sudo: install ${missing[*]} by hand"
    SUDO=(sudo)
  fi
  # Keep the packages' services from starting (standard Debian policy-rc.d mechanism).
  # A file that is already there is left as it is; one created here is removed on exit.
  if [[ ! -e "$POLICY_RC_D" ]]; then
    printf '#!/bin/sh\n# temporary, scripts/install_system_deps.sh\nexit 101\n' \
      | "${SUDO[@]}" tee "$POLICY_RC_D" >/dev/null
    "${SUDO[@]}" chmod 0755 "$POLICY_RC_D"
    trap '"${SUDO[@]}" rm -f "$POLICY_RC_D"' EXIT
  fi
  export DEBIAN_FRONTEND=noninteractive
  "${SUDO[@]}" apt-get update -qq
  "${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
  mapfile -t still < <(missing_packages)
  ((${#still[@]} == 0)) || die "still missing after apt-get install: ${still[*]}"
fi

first_line() { "$@" 2>&1 | head -n 1 | sed 's/\x1b\[[0-9;]*m//g' || true; }
log "promtool: $(first_line promtool --version)"
pg_versions="$(ls /usr/lib/postgresql 2>/dev/null | paste -sd " " - || true)"
log "postgresql: ${pg_versions:-?} (pg_ctlcluster $(command -v pg_ctlcluster))"
log "java: $(first_line java -version)"
log "maven: $(first_line mvn -B -v)"
log "javac: $(first_line javac -version)"
# stderr dropped: Debian's chromium wrapper prints a shell warning before the version.
log "chromium: $(chromium --version 2>/dev/null | head -n 1) (driver: $(first_line chromedriver --version))"
log "kubectl: $(kubectl version --client 2>/dev/null | head -n 1)"
