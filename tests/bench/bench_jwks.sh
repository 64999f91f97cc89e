#!/usr/bin/env bash
# JWKS throughput on one worker, as a ratio to the token-signing rate of the same run.
#
#   bash tests/bench/bench_jwks.sh [--duration 10] [--connections 64] [--log-level info]
#
# Starts `authd serve --workers 1` on 127.0.0.1 (embedded SQLite, fresh KEK, no Redis,
# in a temp dir), then measures with wrk:
#   - GET /.well-known/jwks.json            (200, full body)
#   - GET /.well-known/jwks.json + If-None-Match  (304)
#   - POST /v1/token with an API key from `authd bootstrap` (the exchange)
# and `openssl speed -seconds 3 rsa2048` (raw single-core RSA-2048 sign rate).
# Prints one row per measurement and the ratios, all context: DESIGN §7's JWKS target is
# now a ratio to the bare stack's fixed-JSON route, checked in the saturation section
# (an earlier "JWKS >= 10x the exchange" fell as the exchange itself got faster).
# Rates count successful answers only: wrk's "Non-2xx or 3xx" (status >= 400, e.g. a
# 429 or 401 refusal) are taken out, so refused exchanges never inflate a rate.
set -euo pipefail

DURATION=10
CONNECTIONS=64
LOG_LEVEL=info
while [[ $# -gt 0 ]]; do
  case "$1" in
    --duration) DURATION="$2"; shift 2 ;;
    --connections) CONNECTIONS="$2"; shift 2 ;;
    --log-level) LOG_LEVEL="$2"; shift 2 ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done

REPO="$(cd "$(dirname "$0")/../.." && pwd)"
PY="$REPO/.venv/bin/python"
command -v wrk >/dev/null || { echo "wrk is required" >&2; exit 2; }
WORK="$(mktemp -d)"
PORT="$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
export AUTHD_DATABASE_URL="sqlite:///$WORK/authd.sqlite3"
export AUTHD_KEK="$("$PY" -c 'import base64,os; print(base64.b64encode(os.urandom(32)).decode())')"
export AUTHD_LOG_LEVEL="$LOG_LEVEL" AUTHD_LOG_FORMAT=json AUTHD_API_KEY_DEFAULT_RATE="1000000/s"
unset AUTHD_REDIS_URL PROMETHEUS_MULTIPROC_DIR
SERVER_PID=""
cleanup() {
  if [[ -n "$SERVER_PID" ]]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

cd "$REPO"
"$PY" -m service migrate >/dev/null
"$PY" -m service serve --host 127.0.0.1 --port "$PORT" --workers 1 >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
URL="http://127.0.0.1:$PORT"
for _ in $(seq 1 100); do
  curl -fs "$URL/readyz" >/dev/null 2>&1 && break
  sleep 0.1
done
curl -fs "$URL/readyz" >/dev/null || { echo "server not ready:"; cat "$WORK/server.log"; exit 1; }

API_KEY="$("$PY" -m service --json bootstrap | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["api_key"])')"
ETAG="$(curl -fsI "$URL/.well-known/jwks.json" | tr -d '\r' | awk -F': ' 'tolower($1)=="etag"{print $2}')"

ok_rate() {  # wrk output -> successful answers/s: (requests - status >= 400) / run time
  awk '
    / requests in /{ n = $1; t = $4; sub(/,$/, "", t)
                     if (t ~ /ms$/) s = substr(t, 1, length(t) - 2) / 1000
                     else if (t ~ /m$/) s = substr(t, 1, length(t) - 1) * 60
                     else s = substr(t, 1, length(t) - 1) }
    /Non-2xx or 3xx responses/{ bad = $5 }
    END { printf "%.1f\n", (n - bad) / s }'
}
non2xx() {
  awk '/Non-2xx or 3xx responses/{print $5}' | grep . || echo 0
}

cat >"$WORK/token.lua" <<LUA
wrk.method = "POST"
wrk.headers["X-API-Key"] = "$API_KEY"
LUA

wrk -t1 -c"$CONNECTIONS" -d1s "$URL/.well-known/jwks.json" >/dev/null  # warm-up
JWKS_OUT="$(wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" "$URL/.well-known/jwks.json")"
N304_OUT="$(wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" -H "If-None-Match: $ETAG" "$URL/.well-known/jwks.json")"
TOKEN_OUT="$(wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" -s "$WORK/token.lua" "$URL/v1/token")"
SIGN_RATE="$(openssl speed -seconds 3 rsa2048 2>/dev/null | awk '/^rsa 2048 bits/{print $(NF-1)}')"

JWKS="$(ok_rate <<<"$JWKS_OUT")"; N304="$(ok_rate <<<"$N304_OUT")"; TOKENS="$(ok_rate <<<"$TOKEN_OUT")"
echo "authd JWKS benchmark: 1 worker, 127.0.0.1, wrk -t1 -c$CONNECTIONS -d${DURATION}s, log level $LOG_LEVEL, $(nproc) cores"
printf '%-40s %12s\n' "measurement" "ok per second"
printf '%-40s %12.0f\n' "openssl rsa2048 sign (1 core)" "$SIGN_RATE"
printf '%-40s %12.0f   (non-2xx/3xx: %s)\n' "POST /v1/token (exchange)" "$TOKENS" "$(non2xx <<<"$TOKEN_OUT")"
printf '%-40s %12.0f   (non-2xx/3xx: %s)\n' "GET /.well-known/jwks.json 200" "$JWKS" "$(non2xx <<<"$JWKS_OUT")"
printf '%-40s %12.0f   (non-2xx/3xx: %s)\n' "GET /.well-known/jwks.json 304" "$N304" "$(non2xx <<<"$N304_OUT")"
"$PY" - "$JWKS" "$N304" "$SIGN_RATE" "$TOKENS" <<'PY'
import sys
jwks, n304, sign, tokens = map(float, sys.argv[1:])
print(f"ratio JWKS 200 / openssl sign rate   {jwks / sign:6.2f}x")
print(f"ratio JWKS 304 / openssl sign rate   {n304 / sign:6.2f}x")
if tokens:
    print(f"ratio JWKS 200 / exchange rate       {jwks / tokens:6.2f}x")
    print(f"ratio JWKS 304 / exchange rate       {n304 / tokens:6.2f}x")
PY
