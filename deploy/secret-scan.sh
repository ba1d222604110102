#!/usr/bin/env bash
# Secret scanning with Debian's git-secrets and this project's patterns
# (deploy/secret-patterns; exceptions in /.gitallowed).
#
#   bash deploy/secret-scan.sh                  the repository: tracked and
#                                               untracked (not ignored) files,
#                                               then every commit of every ref
#   bash deploy/secret-scan.sh --repo DIR       the same for another repository
#   bash deploy/secret-scan.sh --paths DIR...   files under directories, no git
#                                               (deploy/test-image.sh: the
#                                               image's filesystem)
#
# Prints each finding as "file:line:text" (history: "commit:file:line:text")
# and exits 1 when there is one; prints "no secrets found" and exits 0 when
# there is none. `dev.sh test` (CI) runs it on the repository.
#
# The patterns are handed to git-secrets through GIT_CONFIG_* variables, so
# nothing is written to any git config and no hook is installed.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PATTERNS_FILE=$HERE/secret-patterns
REPO=$(cd "$HERE/.." && pwd)
PATHS=()

while (($# > 0)); do
  case "$1" in
    --repo)
      REPO=$(cd "${2:?--repo needs a directory}" && pwd)
      shift 2
      ;;
    --paths)
      shift
      PATHS=("$@")
      (($# > 0)) || { echo "secret-scan: --paths needs directories" >&2; exit 2; }
      set --
      ;;
    *)
      echo "usage: secret-scan.sh [--repo DIR | --paths DIR...]" >&2
      exit 2
      ;;
  esac
done

command -v git-secrets >/dev/null ||
  { echo "secret-scan: git-secrets not found (apt-get install git-secrets)" >&2; exit 2; }

# secrets.patterns = each non-comment line of deploy/secret-patterns
count=0
while IFS= read -r line; do
  [[ -z "$line" || "$line" == \#* ]] && continue
  export "GIT_CONFIG_KEY_$count=secrets.patterns" "GIT_CONFIG_VALUE_$count=$line"
  count=$((count + 1))
done <"$PATTERNS_FILE"
export GIT_CONFIG_COUNT=$count
((count > 0)) || { echo "secret-scan: no patterns in $PATTERNS_FILE" >&2; exit 2; }

status=0
if ((${#PATHS[@]} > 0)); then
  # Not inside any repository, so no .gitallowed applies to an image.
  (cd / && git secrets --scan -r "${PATHS[@]}") || status=1
else
  cd "$REPO"
  git rev-parse --git-dir >/dev/null 2>&1 || { echo "secret-scan: $REPO is not a git repository" >&2; exit 2; }
  echo "secret-scan: tree of $REPO"
  git secrets --scan --untracked || status=1
  echo "secret-scan: history of $REPO ($(git rev-list --all | wc -l) commits)"
  git secrets --scan-history || status=1
fi

if ((status == 0)); then
  echo "secret-scan: no secrets found"
fi
exit "$status"
