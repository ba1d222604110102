#!/usr/bin/env bash
# Builds the real deploy/Dockerfile and runs the image here, without a Docker
# engine (SPEC §10, issue 15):
#
#   1. base     debootstrap --variant=minbase bookworm, with Docker Hub's -slim
#               dpkg excludes and apt sources, imported into podman as
#               localhost/debian:bookworm-slim (cached, see below)
#   2. build    podman build --isolation=chroot -f deploy/Dockerfile
#               --build-arg BASE_IMAGE=localhost/debian:bookworm-slim
#   3. export   podman create + podman export: the runtime image's filesystem
#   4. inspect  image user, ENV, size; no compiler, no -dev package, no secret
#   5. run      chroot --userspec=<the image's USER> into it: version, migrate,
#               user add, token create, serve (fly.toml's [env], production)
#               against a throwaway local PostgreSQL; /health, one upload, its
#               download, idle RSS, then concurrent uploads and downloads and
#               the peak RSS, SIGTERM -> exit 0
#   6. redeploy rebuild the image (a new revision), export it, attach the same
#               data dir (a bind mount, like the Fly volume) and database:
#               the upload is still listed and downloads byte-identical
#
# `podman run` does not work here (crun cannot set RLIMIT_NOFILE); chroot with
# the exported filesystem runs the same binary, libraries and user.
#
# Usage (as root, from anywhere):  bash deploy/test-image.sh
#
# Cache: $PORTAL_IMAGE_TEST_DIR (default ./var/image-test) keeps the debootstrap
# tarball (base-bookworm-minbase.tar, ~1.5 min to make) and podman's own
# storage (storage/: the base image and the build's layers, so an unchanged
# apt-get layer is not downloaded again). Delete the directory to start over;
# the base is re-made when it is older than PORTAL_IMAGE_TEST_BASE_DAYS (7).
# Other knobs: DEBIAN_MIRROR (default: the first Debian URI apt uses here),
# JOBS (compile jobs inside the build, default 2), LOAD_UPLOADS (8) and
# LOAD_MIB (64): the concurrent uploads of the memory measurement.
#
# Output: one line per check ("ok ..." / "FAIL ..."), a timing per step, and a
# summary (also written to $PORTAL_IMAGE_TEST_DIR/report.txt). Exit 0 when
# every check passed.
set -euo pipefail
# The whole script is one { ... } block: bash reads all of it before running
# any of it, so an edit to this file during a run cannot derail that run.
{
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$(pwd)
WORK=${PORTAL_IMAGE_TEST_DIR:-$ROOT/var/image-test}
BASE_TAR=$WORK/base-bookworm-minbase.tar
BASE_MAX_DAYS=${PORTAL_IMAGE_TEST_BASE_DAYS:-7}
BASE_IMAGE=localhost/debian:bookworm-slim
IMAGE=localhost/upload-portal
JOBS=${JOBS:-2}
LOAD_UPLOADS=${LOAD_UPLOADS:-8}
LOAD_MIB=${LOAD_MIB:-64}
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
REPORT=$WORK/report.txt

# podman with its own storage under $WORK: nothing shared with other podman
# users on the machine, and the layer cache survives between runs.
PODMAN=(podman --root "$WORK/storage" --runroot "$WORK/run")

FAILED=0
SUMMARY=()
STEP_STARTED=$SECONDS
TOTAL_STARTED=$SECONDS

log() { printf '\n==> %s\n' "$*"; }
ok() { printf 'ok   %s\n' "$*"; }
fail() {
  printf 'FAIL %s\n' "$*"
  FAILED=$((FAILED + 1))
}
die() {
  printf 'test-image: %s\n' "$*" >&2
  exit 1
}
check() { # check DESCRIPTION COMMAND...
  local what=$1
  shift
  if "$@"; then ok "$what"; else fail "$what"; fi
}
step_done() {
  local took=$((SECONDS - STEP_STARTED))
  printf '     (%s: %ds)\n' "$1" "$took"
  SUMMARY+=("time $1: ${took}s")
  STEP_STARTED=$SECONDS
}
note() {
  printf '     %s\n' "$*"
  SUMMARY+=("$*")
}

[[ $(id -u) -eq 0 ]] || die "run as root (debootstrap, podman build and chroot need it)"
if ! command -v podman >/dev/null || ! command -v debootstrap >/dev/null; then
  log "installing podman and debootstrap"
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends podman debootstrap >/dev/null
fi
for tool in podman debootstrap curl python3 openssl "$PG_BIN/initdb"; do
  command -v "$tool" >/dev/null || die "$tool not found"
done
mkdir -p "$WORK"

# --- clean-up of everything this run starts ---------------------------------

SERVER_PID=""
PG_DATA=$WORK/pg/data
MOUNTED=()
cleanup() {
  set +e
  if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -KILL "$SERVER_PID"
    wait "$SERVER_PID" 2>/dev/null
  fi
  if [[ -f "$PG_DATA/postmaster.pid" ]]; then
    runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$PG_DATA" -m immediate -w stop >/dev/null 2>&1
  fi
  for m in "${MOUNTED[@]}"; do umount "$m" 2>/dev/null; done
  # build containers of an interrupted podman build
  "${PODMAN[@]}" ps -aq --external 2>/dev/null | xargs -r "${PODMAN[@]}" rm -f >/dev/null 2>&1
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# rm -rf that refuses to cross a mount point (a bind-mounted volume or device).
safe_rm() {
  local dir
  for dir in "$@"; do
    [[ -e "$dir" ]] || continue
    if findmnt -rn -o TARGET | grep -q "^$(realpath "$dir")\(/\|$\)"; then
      die "refusing to delete $dir: something is mounted below it"
    fi
    rm -rf --one-file-system "$dir"
  done
}

# --- 1. base image --------------------------------------------------------------

debian_mirror() {
  if [[ -n "${DEBIAN_MIRROR:-}" ]]; then
    echo "$DEBIAN_MIRROR"
    return
  fi
  local uri
  uri=$(grep -rhoE '^(URIs:|deb)[[:space:]]+https?://[^[:space:]]+/debian/?([[:space:]]|$)' \
    /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null |
    awk '{print $2}' | grep -v security | head -n 1 || true)
  echo "${uri:-http://deb.debian.org/debian}"
}

make_base_tar() {
  local mirror dir=$WORK/base-rootfs
  mirror=$(debian_mirror)
  log "debootstrap bookworm (minbase) from $mirror"
  rm -rf "$dir"
  debootstrap --variant=minbase bookworm "$dir" "$mirror" >"$WORK/debootstrap.log" 2>&1 ||
    die "debootstrap failed; see $WORK/debootstrap.log"
  # What Docker Hub's debian:bookworm-slim has that minbase lacks: its apt
  # sources (updates and security, so the Dockerfile's upgrade sees them) and
  # the dpkg excludes that make it slim (no docs, man pages or locales).
  rm -f "$dir/etc/apt/sources.list"
  cat >"$dir/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $mirror
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: ${mirror%/debian*}/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  cat >"$dir/etc/dpkg/dpkg.cfg.d/docker" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/locale/*
EOF
  find "$dir/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete 2>/dev/null || true
  rm -rf "$dir"/usr/share/{man,info,locale,lintian}/* "$dir"/var/cache/apt/archives/*.deb \
    "$dir"/var/lib/apt/lists/*
  tar -C "$dir" --numeric-owner -cf "$BASE_TAR.tmp" .
  mv "$BASE_TAR.tmp" "$BASE_TAR"
  rm -rf "$dir"
}

log "1. base image"
if [[ -f "$BASE_TAR" ]] && [[ -z $(find "$BASE_TAR" -mtime +"$BASE_MAX_DAYS") ]]; then
  note "base: cached $BASE_TAR ($(du -h "$BASE_TAR" | cut -f1))"
else
  make_base_tar
  "${PODMAN[@]}" rmi -f "$BASE_IMAGE" >/dev/null 2>&1 || true
  note "base: debootstrap made $BASE_TAR ($(du -h "$BASE_TAR" | cut -f1))"
fi
if ! "${PODMAN[@]}" image exists "$BASE_IMAGE"; then
  "${PODMAN[@]}" import "$BASE_TAR" "$BASE_IMAGE" >/dev/null
fi
step_done base

# --- 2.-4. build, export, inspect ------------------------------------------------

# build_and_export REVISION DIR: builds deploy/Dockerfile, unpacks the
# runtime image's filesystem into DIR.
build_and_export() {
  local revision=$1 dir=$2 ctr
  # A machine whose egress goes through a TLS-inspecting proxy trusts that
  # proxy's CA (NODE_EXTRA_CA_CERTS here); the builder's npm ci must too. The
  # bundle is mounted read-only for the build only: no layer keeps it.
  local ca=()
  if [[ -n "${NODE_EXTRA_CA_CERTS:-}" && -f "$NODE_EXTRA_CA_CERTS" ]]; then
    ca=(-v "$NODE_EXTRA_CA_CERTS:/run/host-ca.crt:ro" --build-arg NPM_CAFILE=/run/host-ca.crt)
  fi
  "${PODMAN[@]}" build --isolation=chroot --layers "${ca[@]}" \
    --build-arg BASE_IMAGE="$BASE_IMAGE" --build-arg JOBS="$JOBS" \
    --build-arg PORTAL_REVISION="$revision" \
    -f deploy/Dockerfile -t "$IMAGE:$revision" . >"$WORK/build-$revision.log" 2>&1 || {
    tail -n 40 "$WORK/build-$revision.log"
    die "podman build failed; see $WORK/build-$revision.log"
  }
  safe_rm "$dir"
  mkdir -p "$dir"
  ctr=$("${PODMAN[@]}" create "$IMAGE:$revision")
  "${PODMAN[@]}" export "$ctr" | tar -C "$dir" --numeric-owner -xf -
  "${PODMAN[@]}" rm "$ctr" >/dev/null
}

inspect() { "${PODMAN[@]}" image inspect --format "$1" "$IMAGE:$2"; }

log "2. build deploy/Dockerfile (revision 1; log: $WORK/build-1.log)"
ROOTFS1=$WORK/rootfs-1
build_and_export 1 "$ROOTFS1"
step_done build-1

log "4. inspect the runtime image"
IMAGE_USER=$(inspect '{{.Config.User}}' 1)
IMAGE_ENV=$(inspect '{{range .Config.Env}}{{println .}}{{end}}' 1)
IMAGE_BYTES=$(inspect '{{.Size}}' 1)
IMAGE_CMD=$(inspect '{{json .Config.Cmd}}' 1)
check "image user is numeric and not root ($IMAGE_USER)" \
  bash -c '[[ "$1" =~ ^[1-9][0-9]*:[1-9][0-9]*$ ]]' _ "$IMAGE_USER"
check "image ENV has PORTAL_LISTEN=0.0.0.0:8080" grep -qx 'PORTAL_LISTEN=0.0.0.0:8080' <<<"$IMAGE_ENV"
DATA_DIR=$(sed -n 's/^PORTAL_DATA_DIR=//p' <<<"$IMAGE_ENV")
check "image ENV sets PORTAL_DATA_DIR ($DATA_DIR), owned by the image user" \
  bash -c '[[ -n "$1" && "$(stat -c %u:%g "$2$1")" == "$3" ]]' _ "$DATA_DIR" "$ROOTFS1" "$IMAGE_USER"
check "image ENV holds no secret" bash -c '! grep -qiE "^(SECRET|DATABASE_|[A-Z_]*(PASSWORD|TOKEN|KEY)=)" <<<"$1"' _ "$IMAGE_ENV"
check "image CMD is upload-portal serve ($IMAGE_CMD)" test "$IMAGE_CMD" = '["upload-portal","serve"]'

# ld.so (the dynamic loader) is not ld (the linker): exact names only.
compilers=$(find "$ROOTFS1/usr/bin" "$ROOTFS1/usr/local/bin" -maxdepth 1 \( -name 'gcc*' -o -name 'g++*' \
  -o -name cc -o -name c++ -o -name cpp -o -name 'cpp-[0-9]*' -o -name 'clang*' -o -name ld \
  -o -name ld.bfd -o -name ld.gold -o -name as -o -name make -o -name cmake -o -name ninja \) \
  -printf '%f ' 2>/dev/null || true)
check "no compiler or build tool in the runtime fs (${compilers:-none})" test -z "$compilers"
build_packages=$(chroot "$ROOTFS1" dpkg-query -W -f '${Package}\n' |
  grep -E '^(gcc|g\+\+|cpp|clang|binutils|make|cmake|ninja-build|libc6-dev|build-essential)(-[0-9.]+)?$' | tr '\n' ' ' || true)
check "no compiler package installed (${build_packages:-none})" test -z "$build_packages"
dev_packages=$(chroot "$ROOTFS1" dpkg-query -W -f '${Package}\n' | grep -E -- '-dev(:|$)' || true)
check "no -dev package installed (${dev_packages:-none})" test -z "$dev_packages"
check "no source tree in the runtime fs" test ! -e "$ROOTFS1/src"
secrets=$(bash deploy/secret-scan.sh --paths "$ROOTFS1" 2>&1 || true)
check "no secret in the runtime fs (deploy/secret-scan.sh --paths)" \
  bash -c '[[ "$1" == *"no secrets found"* ]]' _ "$secrets"
ROOTFS_MIB=$(du -sm "$ROOTFS1" | cut -f1)
note "image size: $((IMAGE_BYTES / 1024 / 1024)) MiB (podman), runtime fs $ROOTFS_MIB MiB on disk"
step_done inspect

# --- 5. run it ------------------------------------------------------------------

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

log "5. run the image's binary as $IMAGE_USER against a local PostgreSQL"
rm -rf "$WORK/pg"
mkdir -p "$WORK/pg"
chown postgres:postgres "$WORK/pg"
chmod 700 "$WORK/pg"
PG_PORT=$(free_port)
runuser -u postgres -- "$PG_BIN/initdb" -D "$PG_DATA" --auth=trust -U portal -E UTF8 --no-sync >/dev/null
runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$WORK/pg/log" -w \
  -o "-c listen_addresses=127.0.0.1 -p $PG_PORT -k $WORK/pg" start >/dev/null
psql -h 127.0.0.1 -p "$PG_PORT" -U portal -d postgres -qc 'create database portal'

# The Fly volume: a directory outside both images, bind-mounted at the image's
# data dir, owned by the image's user as Fly's init makes it.
VOLUME=$WORK/volume
safe_rm "$VOLUME"
install -d -o "${IMAGE_USER%%:*}" -g "${IMAGE_USER##*:}" -m 0750 "$VOLUME"

# fly.toml's [env], with the addresses moved to free loopback ports.
mapfile -t FLY_ENV < <(python3 - "$ROOT/deploy/fly.toml" <<'EOF'
import sys, tomllib
with open(sys.argv[1], "rb") as f:
    for key, value in tomllib.load(f).get("env", {}).items():
        print(f"{key}={value}")
EOF
)
HTTP_PORT=$(free_port)
METRICS_PORT=$(free_port)
SECRET_KEY_BASE=$(openssl rand -hex 64) # generated per run, never written down
RUN_ENV=("${FLY_ENV[@]}"
  "PATH=/usr/local/bin:/usr/bin:/bin"
  "PORTAL_LISTEN=127.0.0.1:$HTTP_PORT"
  "PORTAL_METRICS_LISTEN=127.0.0.1:$METRICS_PORT"
  "DATABASE_URL=postgresql://portal@127.0.0.1:$PG_PORT/portal"
  "PORTAL_DB_ALLOW_INSECURE=1"
  # a shared, busy test machine: a database answer may take seconds
  "PORTAL_DB_DEADLINE_MS=15000"
  "SECRET_KEY_BASE=$SECRET_KEY_BASE")

# image_command ROOTFS ARGS...: sets CMD to upload-portal ARGS as the image's
# user, with only the image's ENV and RUN_ENV, in the exported filesystem.
image_command() {
  local rootfs=$1 envs
  shift
  mapfile -t envs <<<"$IMAGE_ENV"
  CMD=(chroot --userspec="$IMAGE_USER" "$rootfs" /usr/bin/env -i "${envs[@]}" "${RUN_ENV[@]}"
    upload-portal "$@")
}
in_image() {
  image_command "$@"
  "${CMD[@]}"
}

# The volume at the image's data dir, and the two device files libraries may
# open (files, not /dev itself: nothing here may ever recurse into the host's /dev).
attach_volume() { # attach_volume ROOTFS
  mount --bind "$VOLUME" "$1$DATA_DIR"
  MOUNTED+=("$1$DATA_DIR")
  local node
  for node in null urandom; do
    mkdir -p "$1/dev"
    [[ -e "$1/dev/$node" ]] || touch "$1/dev/$node"
    mount --bind "/dev/$node" "$1/dev/$node"
    MOUNTED+=("$1/dev/$node")
  done
}

detach_all() {
  for m in "${MOUNTED[@]}"; do umount "$m"; done
  MOUNTED=()
}

start_server() { # start_server ROOTFS LOG
  image_command "$1" serve
  (exec "${CMD[@]}") >"$2" 2>&1 &
  SERVER_PID=$!
  local deadline=$((SECONDS + 60))
  until curl -fsS -o /dev/null "http://127.0.0.1:$HTTP_PORT/health" 2>/dev/null; do
    kill -0 "$SERVER_PID" 2>/dev/null || { tail -n 20 "$2"; die "server exited at start"; }
    ((SECONDS < deadline)) || die "no /health within 60 s"
    sleep 0.1
  done
}

stop_server() { # stop_server: SIGTERM, expect exit 0 within the drain deadline
  local pid=$SERVER_PID code=0
  kill -TERM "$pid"
  local deadline=$((SECONDS + 40))
  while kill -0 "$pid" 2>/dev/null; do
    ((SECONDS < deadline)) || { fail "server did not exit within 40 s of SIGTERM"; return; }
    sleep 0.1
  done
  wait "$pid" 2>/dev/null || code=$?
  SERVER_PID=""
  check "server exits 0 after SIGTERM" test "$code" -eq 0
}

rss_kib() { awk -v k="$2" '$1 == k":" {print $2}' "/proc/$1/status"; }

attach_volume "$ROOTFS1"
version=$(in_image "$ROOTFS1" version)
check "version runs in the image: $(head -n 1 <<<"$version")" grep -q '^upload-portal ' <<<"$version"
check "release binary (no failpoints, no sanitizers)" bash -c '! grep -qE "failpoints|sanitizers" <<<"$1"' _ "$version"
check "migrate (the release command) exits 0" in_image "$ROOTFS1" migrate
check "user add admin" in_image "$ROOTFS1" user add admin --role admin --password-stdin <<<'image-test-password'
TOKEN=$(in_image "$ROOTFS1" token create --user admin --name image-test | tail -n 1)
check "token create prints a token" grep -qE '^upt_' <<<"$TOKEN"
step_done cli

start_server "$ROOTFS1" "$WORK/serve-1.log"
check "serve runs as the image user (uid ${IMAGE_USER%%:*})" \
  test "$(stat -c %u "/proc/$SERVER_PID")" = "${IMAGE_USER%%:*}"
check "GET /health answers 200" curl -fsS -o /dev/null "http://127.0.0.1:$HTTP_PORT/health"
check "GET /metrics on the metrics listener" \
  bash -c 'curl -fsS "http://127.0.0.1:$1/metrics" | grep -q portal_uploads_active' _ "$METRICS_PORT"
# The web assets are compiled into the binary: the sign-in page and every
# static file it links come from the image alone.
login_page=$(curl -fsS "http://127.0.0.1:$HTTP_PORT/login" || true)
check "GET /login serves the sign-in page" grep -qi '<form' <<<"$login_page"
static_paths=$(grep -oE '(href|src)="/static/[^"]+"' <<<"$login_page" | sed -E 's/^[a-z]+="//; s/"$//' | sort -u)
check "the page links static files ($(tr '\n' ' ' <<<"$static_paths"))" test -n "$static_paths"
for asset in $static_paths; do
  check "GET $asset answers 200" curl -fsS -o /dev/null "http://127.0.0.1:$HTTP_PORT$asset"
done
IDLE_KIB=$(rss_kib "$SERVER_PID" VmRSS)
note "idle RSS: $((IDLE_KIB / 1024)) MiB"

AUTH=(-H "Authorization: Bearer $TOKEN")
SAMPLE=$WORK/sample.tar.gz
mkdir -p "$WORK/sample"
head -c 3000000 /dev/urandom >"$WORK/sample/random.bin"
printf 'hello from the image test\n' >"$WORK/sample/hello.txt"
tar -C "$WORK" -czf "$SAMPLE" sample
created=$(curl -sS -T "$SAMPLE" "${AUTH[@]}" -w '\n%{http_code}' \
  "http://127.0.0.1:$HTTP_PORT/api/v1/uploads/sample.tar.gz")
UPLOAD_ID=$(head -n 1 <<<"$created" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])' || true)
check "upload answers 201 with an id ($UPLOAD_ID)" test "$(tail -n 1 <<<"$created")" = 201 -a -n "$UPLOAD_ID"
curl -fsS "${AUTH[@]}" -o "$WORK/download-1" "http://127.0.0.1:$HTTP_PORT/api/v1/uploads/$UPLOAD_ID/content" || true
check "download is byte-identical" cmp -s "$SAMPLE" "$WORK/download-1"
check "the archive is on the volume" test -f "$VOLUME/archives/$UPLOAD_ID"

# Loaded: LOAD_UPLOADS concurrent uploads of LOAD_MIB MiB (incompressible, so
# the whole body crosses the pipeline), then as many concurrent downloads.
LOAD=$WORK/load.tar.gz
mkdir -p "$WORK/load"
head -c $((LOAD_MIB * 1024 * 1024)) /dev/urandom >"$WORK/load/blob"
tar -C "$WORK" -cf - load | gzip -1 >"$LOAD"
load_started=$SECONDS
pids=()
for i in $(seq 1 "$LOAD_UPLOADS"); do
  curl -sS -o /dev/null -w '%{http_code}\n' -T "$LOAD" "${AUTH[@]}" \
    "http://127.0.0.1:$HTTP_PORT/api/v1/uploads/load-$i.tar.gz" >"$WORK/load-$i.code" &
  pids+=($!)
done
wait "${pids[@]}"
codes=$(cat "$WORK"/load-*.code | sort | uniq -c | tr -s ' ' | tr '\n' ',')
check "$LOAD_UPLOADS concurrent uploads of $LOAD_MIB MiB all 201 ($codes)" \
  bash -c '[[ "$(cat "$1"/load-*.code | sort -u)" == 201 ]]' _ "$WORK"
ids=$(curl -fsS "${AUTH[@]}" "http://127.0.0.1:$HTTP_PORT/api/v1/uploads?limit=100" |
  python3 -c 'import json,sys; print(" ".join(u["id"] for u in json.load(sys.stdin)["uploads"]))')
pids=()
for id in $ids; do
  curl -fsS -o /dev/null "${AUTH[@]}" "http://127.0.0.1:$HTTP_PORT/api/v1/uploads/$id/content" &
  pids+=($!)
done
wait "${pids[@]}"
LOADED_KIB=$(rss_kib "$SERVER_PID" VmHWM)
note "loaded RSS (peak, VmHWM): $((LOADED_KIB / 1024)) MiB after $LOAD_UPLOADS x $LOAD_MIB MiB concurrent uploads + downloads in $((SECONDS - load_started)) s"
check "peak RSS under load stays below 256 MiB (machines have 512 MB)" test "$LOADED_KIB" -lt $((256 * 1024))
stop_server
detach_all
step_done run-1

# --- 6. redeploy: a rebuilt image, the same volume and database -------------------

log "6. redeploy: rebuild (revision 2), same data dir and database"
ROOTFS2=$WORK/rootfs-2
build_and_export 2 "$ROOTFS2"
check "the rebuilt image is a new image" \
  test "$(inspect '{{.Id}}' 1)" != "$(inspect '{{.Id}}' 2)"
step_done build-2
attach_volume "$ROOTFS2"
check "migrate again (idempotent)" in_image "$ROOTFS2" migrate
start_server "$ROOTFS2" "$WORK/serve-2.log"
listed=$(curl -fsS "${AUTH[@]}" "http://127.0.0.1:$HTTP_PORT/api/v1/uploads?limit=100" || true)
check "the upload is still listed after the redeploy" grep -q "\"$UPLOAD_ID\"" <<<"$listed"
curl -fsS "${AUTH[@]}" -o "$WORK/download-2" "http://127.0.0.1:$HTTP_PORT/api/v1/uploads/$UPLOAD_ID/content" || true
check "and downloads byte-identical" cmp -s "$SAMPLE" "$WORK/download-2"
stop_server
detach_all
step_done run-2

# --- summary ----------------------------------------------------------------------

safe_rm "$ROOTFS1" "$ROOTFS2" "$VOLUME"
rm -rf "$WORK/sample" "$WORK/load" "$LOAD" "$WORK"/download-* "$WORK"/load-*.code
SUMMARY+=("total: $((SECONDS - TOTAL_STARTED))s" "failed checks: $FAILED")
{
  echo "deploy/test-image.sh $(date -u +%Y-%m-%dT%H:%M:%SZ) $(git rev-parse --short HEAD 2>/dev/null || true)"
  printf '%s\n' "${SUMMARY[@]}"
} >"$REPORT"
log "summary ($REPORT)"
cat "$REPORT"
((FAILED == 0))
exit
}
