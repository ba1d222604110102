#!/usr/bin/env bash
# The exact command that produced bench/RESULTS.md's figures.
#
#   bench/run.sh                      # build, then every scenario + profiles
#   bench/run.sh --scenarios 4x32M --profile none   # extra args go to bench.py
#   bench/run.sh --targets            # issues 12 and 14's targets: their
#                                     # scenarios, the peers, the stages alone,
#                                     # a verdict per target (bench/targets.py)
#   bench/run.sh --smoke              # every part at a tiny size (CI's check)
#
# Builds build/upload-portal (RelWithDebInfo, Ninja), then bench/bench.py:
# a throwaway PostgreSQL (tests/support/portal_harness.py), `migrate`, user
# `bench` and its token, and for each scenario (1x256M, 4x256M, 16x256M,
# 64x1M) a fresh server with its data dir in bench/.cache/data, loadgen.py
# against it, the uploads deleted, SIGTERM. Then the CPU profiles:
# callgrind (1x32M) because `perf stat -e instructions` has no hardware
# counters in this VM, plus perf record -e cpu-clock -g (4x256M), plus the
# server's system calls counted by strace -f -c (1x32M).
# Raw output: bench/.cache/results/<timestamp>/.
set -euo pipefail
cd "$(dirname "$0")/.."

# Others may be mid-edit: a failed build is retried a few times.
for attempt in 1 2 3 4 5; do
  if cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null &&
     cmake --build build -j2; then
    break
  fi
  if [ "$attempt" = 5 ]; then
    echo "run.sh: the build failed 5 times; giving up" >&2
    exit 1
  fi
  echo "run.sh: build failed (attempt $attempt), retrying in 60 s" >&2
  sleep 60
done

echo "run.sh: commit $(git rev-parse --short HEAD), $(git status --porcelain --untracked-files=no | wc -l) files modified in the worktree"
export PYTHONPATH=tests/support${PYTHONPATH:+:$PYTHONPATH}
exec python3 bench/bench.py --profile both "$@"
