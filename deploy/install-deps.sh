#!/usr/bin/env bash
# Installs everything needed to build, run and test upload-portal on a fresh
# Debian 12 (bookworm). Run as root. Idempotent: when every package is already
# installed it does nothing but check, so re-runs take well under a second.
set -euo pipefail

PACKAGES=(
  # toolchain
  build-essential cmake ninja-build pkg-config git ca-certificates curl python3
  # libraries the binary links
  libcaf-dev libboost1.81-dev libboost-json1.81-dev libboost-url1.81-dev libboost-context1.81-dev
  libpqxx-dev libpq-dev libarchive-dev zlib1g-dev libzstd-dev zstd libssl-dev openssl
  libsodium-dev prometheus-cpp-dev libtomlplusplus-dev libisal-dev
  # tests (prometheus: its promtool checks the /metrics text; git-secrets:
  # deploy/secret-scan.sh in CI)
  catch2 prometheus git-secrets
  # local database for `dev.sh serve` and the integration/e2e tests
  postgresql postgresql-client
  # PgBouncer in transaction mode in front of the test cluster (SPEC §3; tests/e2e/test_pgbouncer.py)
  pgbouncer
  # browser end-to-end tests: Debian's Chromium, driven by playwright-core
  # (tests/browser, installed by `dev.sh test`; never a downloaded browser)
  chromium
  # the benchmark: its store-only peer (bench/peers.py, a WebDAV PUT
  # location) and the command-line tools among its stages alone
  # (bench/stages.py: igzip is ISA-L's inflate, bsdtar libarchive's)
  nginx isal libarchive-tools
)

# Node.js and npm for the build (it installs web/package-lock.json: the
# browser's tus client, embedded in the binary) and for tests/browser.
# Debian's `nodejs` and `npm` packages unless a node and npm are already on
# PATH (e.g. a nodejs package that bundles npm, which Debian's `npm` package
# would conflict with).
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  PACKAGES+=(nodejs npm)
fi

# One dpkg-query for all packages (one per package takes seconds on re-runs).
declare -A installed=()
while read -r status pkg; do
  [[ "$status" == "installed" ]] && installed[${pkg%%:*}]=1
done < <(dpkg-query -W -f='${db:Status-Status} ${Package}\n' "${PACKAGES[@]}" 2>/dev/null || true)
missing=()
for pkg in "${PACKAGES[@]}"; do
  if [[ -z "${installed[$pkg]:-}" ]]; then
    missing+=("$pkg")
  fi
done

if ((${#missing[@]} > 0)); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "install-deps: missing packages (${missing[*]}); run this script as root" >&2
    exit 1
  fi
  echo "install-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # Installing nginx or postgresql would start their system services (nginx
  # on port 80, Debian's own cluster): nothing here uses them (the tests,
  # `dev.sh serve` and the benchmark start their own), and a container has
  # no init to run them. So invoke-rc.d is refused for the install only
  # (policy-rc.d exit 101, "action forbidden").
  policy=/usr/sbin/policy-rc.d
  if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod +x "$policy"
    trap 'rm -f "$policy"' EXIT
  fi
  apt-get update
  apt-get install -y --no-install-recommends "${PACKAGES[@]}"
fi

# PostgreSQL refuses to run as root: the tests and `dev.sh serve` run it as
# this unprivileged user (the postgresql package creates it; make sure).
if ! id -u postgres >/dev/null 2>&1; then
  if [[ $(id -u) -ne 0 ]]; then
    echo "install-deps: OS user 'postgres' is missing; run this script as root" >&2
    exit 1
  fi
  useradd --system --home-dir /var/lib/postgresql --shell /bin/bash \
    --user-group postgres
fi

# Sanity check: the PostgreSQL 15 server binaries the tests look for.
if [[ ! -x /usr/lib/postgresql/15/bin/initdb ]]; then
  echo "install-deps: /usr/lib/postgresql/15/bin/initdb not found (expected PostgreSQL 15 from Debian 12)" >&2
  exit 1
fi
