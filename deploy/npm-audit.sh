#!/usr/bin/env bash
# npm audit of every committed package-lock.json, from the lockfile alone (no
# node_modules needed). High and critical advisories fail.
#
#   bash deploy/npm-audit.sh
#
# Exit 0: no high/critical advisory; 1: some (npm's report is printed);
# 3: the registry's advisory endpoint could not be asked (for example a
# registry mirror that answers its POST with 405): nothing was checked, and
# the line says so. `dev.sh test` treats 3 as a warning unless
# PORTAL_NPM_AUDIT=required.
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 2
status=0
mapfile -t locks < <(git ls-files '*package-lock.json' 2>/dev/null)
if ((${#locks[@]} == 0)); then
  echo "npm-audit: no package-lock.json in the repository"
  exit 0
fi
for lock in "${locks[@]}"; do
  dir=$(dirname "$lock")
  report=$(cd "$dir" && npm audit --package-lock-only --json 2>/dev/null)
  verdict=$(python3 -c '
import json, sys
try:
    r = json.loads(sys.stdin.read())
except ValueError:
    print("unavailable npm printed no JSON"); sys.exit()
if "error" in r and "metadata" not in r:
    print("unavailable", r.get("message") or r["error"].get("summary") or "audit endpoint error"); sys.exit()
v = r.get("metadata", {}).get("vulnerabilities", {})
bad = v.get("high", 0) + v.get("critical", 0)
print("fail" if bad else "ok", " ".join(f"{k}={v.get(k, 0)}" for k in ("critical", "high", "moderate", "low")))
' <<<"$report")
  case "$verdict" in
    ok*) echo "npm-audit: $lock: ok (${verdict#ok })" ;;
    fail*)
      echo "npm-audit: $lock: FAIL (${verdict#fail })"
      (cd "$dir" && npm audit --package-lock-only --audit-level=high)
      status=1
      ;;
    *)
      echo "npm-audit: $lock: NOT CHECKED: ${verdict#unavailable }"
      ((status == 0)) && status=3
      ;;
  esac
done
exit "$status"
