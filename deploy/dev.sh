#!/usr/bin/env bash
# The developer entry point.
#
#   bash deploy/dev.sh serve     install deps, build, start a local PostgreSQL
#                                under ./var/pg (unless DATABASE_URL is set),
#                                migrate, then run the server on :8080
#   bash deploy/dev.sh test      install deps (and tests/browser npm packages),
#                                build a test build (failpoints on) in
#                                build-test and run every test in parallel
#                                while build-asan (ASan+UBSan) compiles, then
#                                the suites labelled `asan` there (README.md,
#                                "CI time")
#   bash deploy/dev.sh build     install deps and build only
#   bash deploy/dev.sh stop-db   stop the local PostgreSQL started by `serve`
#
# Environment knobs: JOBS (build parallelism, default 2), CTEST_JOBS (suites
# at once in build-test, default 4), CTEST_ASAN_JOBS (in build-asan, default
# 3), PORTAL_DEV_PG_PORT (default 54329), PORTAL_DEV_PG_DIR (default ./var/pg).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$(pwd)
JOBS=${JOBS:-2}
CTEST_JOBS=${CTEST_JOBS:-4}
CTEST_ASAN_JOBS=${CTEST_ASAN_JOBS:-3}
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
PG_PORT=${PORTAL_DEV_PG_PORT:-54329}
PG_DIR=${PORTAL_DEV_PG_DIR:-$ROOT/var/pg}
PG_DATA=$PG_DIR/data

log() { printf '\n==> %s\n' "$*"; }
die() { printf 'dev.sh: %s\n' "$*" >&2; exit 1; }

install_deps() {
  log "checking dependencies"
  bash deploy/install-deps.sh
}

# build DIR [extra cmake args...]
build() {
  local dir=$1; shift
  log "building in $dir"
  cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@"
  cmake --build "$dir" -j "$JOBS"
}

# The npm packages of the end-to-end tests, each pinned by its
# package-lock.json: tests/browser (playwright-core, driving Debian's
# /usr/bin/chromium: never a browser download), tests/tus-client (the
# official tus-js-client under node) and bench/peers (@tus/server). `npm ci` only when node_modules is
# missing or the lock changed since the last one.
prepare_npm_tests() {
  local dir=$1 stamp want
  stamp=$dir/node_modules/.portal-lock.sha256
  want=$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)
  if [[ -d "$dir/node_modules" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    log "$dir packages up to date"
    return
  fi
  log "installing test packages (npm ci in $dir)"
  (cd "$dir" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund)
  echo "$want" >"$stamp"
}

prepare_browser_tests() {
  prepare_npm_tests tests/browser
  prepare_npm_tests tests/tus-client
  # the benchmark's @tus/server peer (ctest bench.smoke; bench/peers.py runs
  # the same npm ci when it finds the stamp stale)
  prepare_npm_tests bench/peers
}

# --- local PostgreSQL for `serve` ---------------------------------------------

# PostgreSQL refuses to run as root: as root, run its tools as `postgres`.
as_pg() {
  if [[ $(id -u) -eq 0 ]]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

start_local_pg() {
  mkdir -p "$PG_DIR"
  if [[ $(id -u) -eq 0 ]]; then
    chown postgres:postgres "$PG_DIR"
    chmod 700 "$PG_DIR"
    as_pg test -w "$PG_DIR" ||
      die "user 'postgres' cannot reach $PG_DIR (is a parent directory private?); set PORTAL_DEV_PG_DIR"
  fi

  if [[ ! -f "$PG_DATA/PG_VERSION" ]]; then
    log "initialising a PostgreSQL cluster in $PG_DATA"
    # trust auth is acceptable only because it listens on loopback + a private socket dir
    as_pg "$PG_BIN/initdb" -D "$PG_DATA" --auth=trust -U portal -E UTF8 >"$PG_DIR/initdb.log" ||
      die "initdb failed; see $PG_DIR/initdb.log"
    as_pg tee -a "$PG_DATA/postgresql.conf" >/dev/null <<EOF

# upload-portal dev settings (deploy/dev.sh)
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$PG_DIR'
EOF
  fi

  if as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" status >/dev/null 2>&1; then
    log "reusing the running PostgreSQL on 127.0.0.1:$PG_PORT"
  else
    log "starting PostgreSQL on 127.0.0.1:$PG_PORT"
    as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$PG_DIR/postgresql.log" -w -t 30 start >/dev/null ||
      die "PostgreSQL did not start; see $PG_DIR/postgresql.log (is port $PG_PORT taken?)"
  fi

  local exists
  exists=$(psql -h 127.0.0.1 -p "$PG_PORT" -U portal -d postgres -Atc \
    "select 1 from pg_database where datname = 'portal'")
  if [[ "$exists" != "1" ]]; then
    createdb -h 127.0.0.1 -p "$PG_PORT" -U portal portal
  fi
  export DATABASE_URL="postgresql://portal@127.0.0.1:$PG_PORT/portal"
}

stop_local_pg() {
  if [[ -f "$PG_DATA/PG_VERSION" ]] && as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" status >/dev/null 2>&1; then
    as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -m fast -w stop
  else
    echo "no local PostgreSQL running in $PG_DATA"
  fi
}

cmd_serve() {
  install_deps
  build build
  if [[ -z "${DATABASE_URL:-}" ]]; then
    start_local_pg
  else
    log "using DATABASE_URL from the environment"
  fi

  log "migrating"
  build/upload-portal migrate

  cat <<EOF

==> first admin (in another shell, from $ROOT):
      export DATABASE_URL='${DATABASE_URL}'
      build/upload-portal user add admin --role admin --password-stdin <<<'choose-a-password'
      TOKEN=\$(build/upload-portal token create --user admin | tail -n 1)
      curl -H "Authorization: Bearer \$TOKEN" http://127.0.0.1:8080/api/v1/me
    stop the local database later with: bash deploy/dev.sh stop-db

EOF
  log "serving (Ctrl-C to stop)"
  exec build/upload-portal serve
}

# --- security checks and the image test (issue 15; deploy/README.md) ----------

# deploy/npm-audit.sh: high or critical advisories fail; an advisory
# endpoint that cannot be asked is a loud warning (PORTAL_NPM_AUDIT=required
# makes it a failure).
npm_audit() {
  log "npm audit (every committed package-lock.json)"
  local status=0
  bash deploy/npm-audit.sh || status=$?
  if ((status == 3)) && [[ "${PORTAL_NPM_AUDIT:-}" != required ]]; then
    echo "dev.sh: WARNING: npm audit could not reach the advisory database: dependencies NOT checked"
    return 0
  fi
  return "$status"
}

secret_scan() {
  log "secret scan (tree and history)"
  bash deploy/secret-scan.sh
}

# deploy/test-image.sh when the files the image is made from changed since
# the hash committed in deploy/image-test.stamp (PORTAL_IMAGE_TEST=1 forces
# it, =0 skips it); a pass writes the new hash, to be committed.
image_test_if_changed() {
  local stamp=deploy/image-test.stamp hash
  # CMakeLists.txt counts by its dependency lines only (find_package,
  # pkg_check_modules): a new source file or test suite does not change what
  # the image installs. The web lock does: the builder runs npm ci.
  hash=$( (sha256sum deploy/Dockerfile .dockerignore deploy/fly.toml deploy/test-image.sh \
    deploy/install-deps.sh web/package.json web/package-lock.json &&
    grep -E 'find_package|pkg_check_modules' CMakeLists.txt) | sha256sum | cut -d' ' -f1)
  case "${PORTAL_IMAGE_TEST:-auto}" in
    0) log "image test skipped (PORTAL_IMAGE_TEST=0)"; return 0 ;;
    auto) if [[ -f "$stamp" && "$(cat "$stamp")" == "$hash" ]]; then
        log "image test skipped: its inputs match $stamp"
        return 0
      fi ;;
  esac
  log "image test (deploy/test-image.sh)"
  bash deploy/test-image.sh && echo "$hash" >"$stamp"
}

# Each check counts as one test in the closing line.
run_deploy_checks() {
  local check status=0
  for check in npm_audit secret_scan image_test_if_changed; do
    if "$check"; then PASSED=$((PASSED + 1)); else FAILED=$((FAILED + 1)); status=1; fi
  done
  return "$status"
}

# run_ctest DIR [CTEST ARGS...]: runs the suites, remembers their counts;
# returns ctest's status.
PASSED=0
FAILED=0
run_ctest() {
  local dir=$1 out status=0
  shift
  out=$(mktemp)
  log "ctest in $dir $*"
  ctest --test-dir "$dir" --output-on-failure "$@" 2>&1 | tee "$out" || status=$?
  # "83% tests passed, 2 tests failed out of 12"
  local line
  line=$(grep -E '^[0-9]+% tests passed, [0-9]+ tests? failed out of [0-9]+' "$out" | tail -n 1 || true)
  if [[ -n "$line" ]]; then
    local failed total
    failed=$(sed -E 's/.* ([0-9]+) tests? failed out of ([0-9]+).*/\1/' <<<"$line")
    total=$(sed -E 's/.* ([0-9]+) tests? failed out of ([0-9]+).*/\2/' <<<"$line")
    PASSED=$((PASSED + total - failed))
    FAILED=$((FAILED + failed))
  else
    # no summary (no tests found, or ctest itself failed): count it as a failure
    FAILED=$((FAILED + 1))
    status=1
  fi
  rm -f "$out"
  return "$status"
}

# timed NAME CMD...: runs CMD, records how long it took under NAME (for the
# summary print_wall_time gives; docs/CI-TIME.md keeps the measured figures).
PHASES=()
timed() {
  local name=$1 started=$SECONDS status=0
  shift
  "$@" || status=$?
  PHASES+=("$(printf '%-28s %4ds' "$name" $((SECONDS - started)))")
  return "$status"
}

print_wall_time() {
  local elapsed=$((SECONDS - TEST_STARTED)) phase
  printf '\n==> phases\n'
  for phase in "${PHASES[@]}"; do
    printf '    %s\n' "$phase"
  done
  printf '==> total wall time: %dm%02ds\n' $((elapsed / 60)) $((elapsed % 60))
}

# renice_tree PID N: PID and every process under it to niceness N (lowering it
# needs root, as in CI; elsewhere it stays as it was).
renice_tree() {
  local child
  renice -n "$2" -p "$1" >/dev/null 2>&1 || true
  # /proc rather than ps: procps is not on every fresh Debian
  for child in $(cat /proc/"$1"/task/*/children 2>/dev/null); do
    renice_tree "$child" "$2"
  done
}

sanitizer_env() {
  export UBSAN_OPTIONS="suppressions=$ROOT/tests/support/ubsan.supp:print_stacktrace=1:halt_on_error=1"
  export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0"
  export LSAN_OPTIONS="suppressions=$ROOT/tests/support/lsan.supp:print_suppressions=0"
}

cmd_test() {
  local rc=0 asan_log asan_done asan_pid asan_started
  TEST_STARTED=$SECONDS
  trap print_wall_time EXIT # also when a build fails
  timed "install deps" install_deps
  timed "npm ci (tests, bench/peers)" prepare_browser_tests

  # Test builds compile in the failpoints (storage delay / ENOSPC) that the
  # backpressure tests drive; build/ (what `serve` runs) never has them.
  # They carry line tables only (-g1): sanitizer reports and backtraces need
  # file:line, never locals, and full -g cost a third of a unit's compile
  # time (README, "CI time"). They are -O1 (release builds stay -O2): the
  # suites check behaviour, not speed (their few time bounds are generous),
  # and -O2 doubles the compile of the Beast sessions (the TLS one: 161 s of
  # CPU at -O2, 85 s at -O1, measured on 2 December 2026).
  # build-test compiles file by file, as build/ and the image do, so that
  # a source missing an include fails here; build-asan compiles in batches
  # of sources (PORTAL_UNITY_BUILD: CMakeLists.txt, README "CI time").
  local line_tables="-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -g1 -DNDEBUG"
  timed "build build-test" build build-test -DPORTAL_FAILPOINTS=ON "$line_tables"

  # The ASan build compiles while the plain suites run: the suites mostly
  # wait on sockets, timers and PostgreSQL, the compiler wants the CPU. It
  # runs niced while they run, so the servers under test still get a core
  # when they need one (a login hashes with Argon2id inside its database
  # request), and at normal priority once they are done; its output is
  # shown then.
  asan_log=$(mktemp)
  asan_done=$(mktemp)
  asan_started=$SECONDS
  (
    renice -n 10 -p "$BASHPID" >/dev/null
    build build-asan -DPORTAL_SANITIZE=ON -DPORTAL_FAILPOINTS=ON -DPORTAL_UNITY_BUILD=ON \
      "$line_tables"
    echo "$SECONDS" >"$asan_done"
  ) >"$asan_log" 2>&1 &
  asan_pid=$!

  timed "ctest build-test (-j$CTEST_JOBS)" run_ctest build-test -j "$CTEST_JOBS" || rc=1
  timed "deploy checks" run_deploy_checks || rc=1

  renice_tree "$asan_pid" 0
  log "waiting for the ASan build"
  local waited=$SECONDS
  if ! wait "$asan_pid"; then
    cat "$asan_log"
    die "the ASan build failed"
  fi
  cat "$asan_log"
  PHASES+=("$(printf '%-28s %4ds' "build build-asan (beside)" $(($(cat "$asan_done") - asan_started)))")
  PHASES+=("$(printf '%-28s %4ds' "  of which after the ctest" $((SECONDS - waited)))")
  rm -f "$asan_log" "$asan_done"

  sanitizer_env
  timed "ctest build-asan (-j$CTEST_ASAN_JOBS)" run_ctest build-asan -L asan -j "$CTEST_ASAN_JOBS" || rc=1

  trap - EXIT
  print_wall_time
  # the plain closing line CI reads (both ctest runs added up)
  echo "tests: $PASSED passed, $FAILED failed"
  return "$rc"
}

case "${1:-}" in
  serve) cmd_serve ;;
  test) cmd_test ;;
  build) install_deps; build build ;;
  stop-db) stop_local_pg ;;
  *)
    echo "usage: bash deploy/dev.sh serve|test|build|stop-db" >&2
    exit 2
    ;;
esac
