#!/usr/bin/env bash
# Checks a running upload-portal as an outsider would (the deploy plan's
# security checklist; SPEC §4, §7, §8). Only anonymous requests: it needs no
# account and changes nothing.
#
#   bash deploy/security-audit.sh [options] URL
#
#   URL                 the public base URL, e.g. https://upload-portal.fly.dev
#   --http-url URL      where plain HTTP is answered, for the redirect check
#                       (default: URL with http:// on port 80, when URL is
#                       https on the default port; otherwise the check is skipped)
#   --metrics-url URL   the metrics listener, if reachable from here: it must
#                       serve /metrics (on Fly it is private: leave it out)
#   --cacert FILE       trust this CA too (a local test certificate)
#   --proxied           URL is plain http but the server sits behind a
#                       TLS-terminating proxy that it trusts (PORTAL_TRUST_PROXY):
#                       check its own redirect of X-Forwarded-Proto: http and HSTS
#
# One line per check: "PASS name: detail", "FAIL name: detail" or
# "SKIP name: why"; then a summary. Exit 0 when nothing failed, 1 otherwise,
# 2 on a usage error.
set -uo pipefail

usage() {
  sed -n '2,/^set -uo/p' "$0" | sed -e 's/^# \{0,1\}//' -e '/^set -uo/d' >&2
  exit 2
}

URL="" HTTP_URL="" METRICS_URL="" CACERT="" PROXIED=0
while (($# > 0)); do
  case "$1" in
    --http-url) HTTP_URL=${2:-}; shift 2 ;;
    --metrics-url) METRICS_URL=${2:-}; shift 2 ;;
    --cacert) CACERT=${2:-}; shift 2 ;;
    --proxied) PROXIED=1; shift ;;
    -h | --help) usage ;;
    -*) echo "security-audit: unknown option $1" >&2; usage ;;
    *) [[ -z "$URL" ]] || usage; URL=$1; shift ;;
  esac
done
[[ "$URL" =~ ^(https?)://([^/:]+|\[[0-9a-fA-F:]+\])(:([0-9]+))?/?$ ]] || {
  echo "security-audit: URL must be http(s)://host[:port] (no path), got '$URL'" >&2
  exit 2
}
SCHEME=${BASH_REMATCH[1]} HOST=${BASH_REMATCH[2]} PORT=${BASH_REMATCH[4]}
URL=${URL%/}
if [[ -z "$PORT" ]]; then
  [[ "$SCHEME" == https ]] && PORT=443 || PORT=80
  DEFAULT_PORT=1
else
  DEFAULT_PORT=0
fi
if [[ -z "$HTTP_URL" && "$SCHEME" == https && $DEFAULT_PORT -eq 1 ]]; then
  HTTP_URL="http://$HOST"
fi
for tool in curl openssl; do
  command -v "$tool" >/dev/null || { echo "security-audit: $tool not found" >&2; exit 2; }
done

PASSED=0 FAILED=0 SKIPPED=0
pass() { printf 'PASS %s: %s\n' "$1" "$2"; PASSED=$((PASSED + 1)); }
fail() { printf 'FAIL %s: %s\n' "$1" "$2"; FAILED=$((FAILED + 1)); }
skip() { printf 'SKIP %s: %s\n' "$1" "$2"; SKIPPED=$((SKIPPED + 1)); }

CURL=(curl -sS --max-time 15 --proto '=http,https' --max-redirs 0)
[[ -n "$CACERT" ]] && CURL+=(--cacert "$CACERT")
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

# fetch NAME URL [curl args...]: status in $WORK/NAME.status, headers in
# $WORK/NAME.headers (lower-cased names), body in $WORK/NAME.body.
fetch() {
  local name=$1 url=$2
  shift 2
  local status
  status=$("${CURL[@]}" -o "$WORK/$name.body" -D "$WORK/$name.raw" -w '%{http_code}' "$@" "$url" 2>"$WORK/$name.err")
  echo "${status:-000}" >"$WORK/$name.status"
  tr -d '\r' <"$WORK/$name.raw" 2>/dev/null | awk -F': ' 'NF >= 2 {printf "%s: %s\n", tolower($1), substr($0, length($1) + 3)}' \
    >"$WORK/$name.headers"
}
status_of() { cat "$WORK/$1.status"; }
header_of() { sed -n "s/^$2: //p" "$WORK/$1.headers" | head -n 1; }
curl_error() { head -n 1 "$WORK/$1.err"; }

# --- reachable ---------------------------------------------------------------------

fetch health "$URL/health"
if [[ $(status_of health) == 200 ]] && grep -q '"ok"' "$WORK/health.body"; then
  pass health "GET /health answers 200 {\"status\":\"ok\"}"
else
  fail health "GET /health answered $(status_of health) $(curl_error health)"
  echo "summary: $PASSED passed, $FAILED failed, $SKIPPED skipped (server unreachable: nothing else checked)"
  exit 1
fi

# --- transport ---------------------------------------------------------------------

if [[ "$SCHEME" == https ]]; then
  if [[ -n "$HTTP_URL" ]]; then
    fetch plain "$HTTP_URL/login"
    location=$(header_of plain location)
    if [[ $(status_of plain) =~ ^30[178]$ && "$location" == https://* ]]; then
      pass https-redirect "plain HTTP $(status_of plain) to $location"
    else
      fail https-redirect "plain HTTP $HTTP_URL/login answered $(status_of plain) (location: ${location:-none}) $(curl_error plain)"
    fi
  else
    skip https-redirect "no plain-HTTP URL known for a non-default port (pass --http-url)"
  fi
elif ((PROXIED)); then
  fetch proxied "$URL/login" -H 'X-Forwarded-Proto: http'
  location=$(header_of proxied location)
  if [[ $(status_of proxied) == 301 && "$location" == https://* ]]; then
    pass https-redirect "X-Forwarded-Proto: http gets 301 to $location"
  else
    fail https-redirect "X-Forwarded-Proto: http answered $(status_of proxied) (location: ${location:-none}); is PORTAL_TRUST_PROXY on, PORTAL_ENV production?"
  fi
  fetch proxied_health "$URL/health" -H 'X-Forwarded-Proto: http'
  if [[ $(status_of proxied_health) == 200 ]]; then
    pass health-not-redirected "/health answers 200 over plain http (the platform's check)"
  else
    fail health-not-redirected "/health over plain http answered $(status_of proxied_health)"
  fi
else
  fail https-redirect "$URL is plain http and not --proxied: nothing would move a browser to https"
fi

fetch login "$URL/login"
hsts=$(header_of login strict-transport-security)
if [[ "$SCHEME" == https || $PROXIED -eq 1 ]]; then
  max_age=$(sed -n 's/.*max-age=\([0-9]*\).*/\1/p' <<<"$hsts")
  if [[ -n "$max_age" ]] && ((max_age >= 15552000)); then
    pass hsts "Strict-Transport-Security: $hsts"
  else
    fail hsts "Strict-Transport-Security is '${hsts:-missing}' (want max-age >= 180 days)"
  fi
else
  skip hsts "plain http: HSTS is for https deployments"
fi

if [[ "$SCHEME" == https ]]; then
  TLS_ARGS=(-connect "$HOST:$PORT" -servername "$HOST")
  [[ -n "$CACERT" ]] && TLS_ARGS+=(-CAfile "$CACERT")
  session=$(openssl s_client "${TLS_ARGS[@]}" -verify_return_error </dev/null 2>&1)
  protocol=$(sed -n 's/^ *Protocol *: *//p' <<<"$session" | head -n 1)
  [[ -n "$protocol" ]] || protocol=$(sed -n 's/^New, \(TLSv[0-9.]*\),.*/\1/p' <<<"$session" | head -n 1)
  verify=$(sed -n 's/^ *Verify return code: //p' <<<"$session" | head -n 1)
  if [[ "$protocol" == TLSv1.2 || "$protocol" == TLSv1.3 ]] && [[ "$verify" == "0 (ok)" ]]; then
    pass tls-version "negotiated $protocol, certificate verified"
  else
    fail tls-version "negotiated '${protocol:-nothing}', verify: ${verify:-no answer}"
  fi
  # SECLEVEL=0: OpenSSL 3 clients refuse TLS < 1.2 themselves at the
  # default level, which would make this check pass whatever the server does.
  for old in tls1 tls1_1; do
    if openssl s_client "${TLS_ARGS[@]}" "-$old" -cipher 'DEFAULT:@SECLEVEL=0' </dev/null >/dev/null 2>&1; then
      fail "tls-old-refused" "the server accepts ${old/tls1/TLS 1.0}${old#tls1}"
    else
      pass "tls-old-refused" "-$old handshake refused"
    fi
  done
else
  skip tls-version "plain http URL: TLS is the proxy's (check the public https URL)"
fi

# --- headers (SPEC §8) on a page, an API error and a static file ------------------------

fetch me "$URL/api/v1/me"
for name in login me; do
  csp=$(header_of "$name" content-security-policy)
  script_src=$(tr ';' '\n' <<<"$csp" | sed -n 's/^ *script-src //p')
  [[ -n "$script_src" ]] || script_src=$(tr ';' '\n' <<<"$csp" | sed -n 's/^ *default-src //p')
  if [[ -n "$csp" && "$script_src" != *unsafe-inline* && "$script_src" != *unsafe-eval* &&
    "$csp" == *"frame-ancestors 'none'"* ]]; then
    pass "csp($name)" "script-src $script_src; frame-ancestors 'none'"
  else
    fail "csp($name)" "Content-Security-Policy: '${csp:-missing}'"
  fi
  expect=("x-content-type-options=nosniff" "x-frame-options=DENY")
  for pair in "${expect[@]}"; do
    got=$(header_of "$name" "${pair%%=*}")
    if [[ "${got,,}" == "${pair#*=}" || "$got" == "${pair#*=}" ]]; then
      pass "${pair%%=*}($name)" "$got"
    else
      fail "${pair%%=*}($name)" "'${got:-missing}', want ${pair#*=}"
    fi
  done
  for present in referrer-policy permissions-policy; do
    got=$(header_of "$name" "$present")
    if [[ -n "$got" && "$got" != *unsafe-url* ]]; then
      pass "$present($name)" "$got"
    else
      fail "$present($name)" "'${got:-missing}'"
    fi
  done
done

server=$(header_of login server)
powered=$(header_of login x-powered-by)
if [[ "$server" =~ [0-9] || -n "$powered" ]]; then
  fail server-header "leaks a version: Server '${server}' X-Powered-By '${powered}'"
else
  pass server-header "no version (Server: '${server:-absent}')"
fi

fetch cors "$URL/api/v1/uploads" -H 'Origin: https://attacker.example'
acao=$(header_of cors access-control-allow-origin)
if [[ -z "$acao" ]]; then
  pass cors "no Access-Control-Allow-Origin for a foreign Origin"
else
  fail cors "Access-Control-Allow-Origin: $acao for https://attacker.example"
fi

# --- anonymous callers (SPEC §4, §7) -------------------------------------------------

check_refused() { # name path expected-regex [curl args]
  local name=$1 path=$2 want=$3
  shift 3
  fetch "$name" "$URL$path" "$@"
  local got location
  got=$(status_of "$name")
  location=$(header_of "$name" location)
  if [[ "$got" =~ ^($want)$ ]]; then
    pass "$name" "anonymous $path: $got${location:+ to $location}"
  else
    fail "$name" "anonymous $path answered $got (want $want)"
  fi
}
# The dashboard page: an anonymous browser is sent to the sign-in page. A
# version without the page answers 404, which refuses nothing but leaks
# nothing either.
fetch admin-page "$URL/admin"
case "$(status_of admin-page)" in
  303)
    if [[ $(header_of admin-page location) == */login* ]]; then
      pass admin-page "anonymous /admin: 303 to $(header_of admin-page location)"
    else
      fail admin-page "anonymous /admin: 303 to $(header_of admin-page location), not to the sign-in page"
    fi
    ;;
  401 | 403) pass admin-page "anonymous /admin: $(status_of admin-page)" ;;
  404) skip admin-page "/admin is not served by this version (404)" ;;
  *) fail admin-page "anonymous /admin answered $(status_of admin-page) (want 303 to /login)" ;;
esac
check_refused admin-api /admin/actors '401|403'
check_refused admin-audit '/admin/audit?limit=1' '401|403'
check_refused admin-metrics /admin/metrics '401|403'
check_refused api-list /api/v1/uploads '401'
if [[ $(header_of api-list www-authenticate) == Bearer* ]]; then
  pass api-www-authenticate "WWW-Authenticate: $(header_of api-list www-authenticate)"
else
  fail api-www-authenticate "401 without WWW-Authenticate: Bearer"
fi
check_refused api-upload /api/v1/uploads/audit.tar.gz '401|403' -X PUT --data-binary 'x' -H 'Content-Type: application/octet-stream'
check_refused api-bad-token /api/v1/me '401' -H 'Authorization: Bearer upt_not-a-real-token'
check_refused tus-create /api/v1/tus/ '401|403|404|405' -X POST -H 'Tus-Resumable: 1.0.0' -H 'Upload-Length: 1'

fetch public_metrics "$URL/metrics"
if [[ $(status_of public_metrics) != 200 ]] && ! grep -q '^portal_' "$WORK/public_metrics.body"; then
  pass metrics-not-public "GET /metrics on the public port: $(status_of public_metrics)"
else
  fail metrics-not-public "GET /metrics on the public port answered $(status_of public_metrics) with metrics"
fi
if [[ -n "$METRICS_URL" ]]; then
  fetch private_metrics "${METRICS_URL%/}/metrics"
  if [[ $(status_of private_metrics) == 200 ]] && grep -q '^portal_' "$WORK/private_metrics.body"; then
    pass metrics-listener "GET /metrics on $METRICS_URL serves Prometheus text"
  else
    fail metrics-listener "GET /metrics on $METRICS_URL answered $(status_of private_metrics)"
  fi
fi

echo "summary: $PASSED passed, $FAILED failed, $SKIPPED skipped"
((FAILED == 0))
