#!/usr/bin/env bash
# `make bench`: every authd benchmark, loopback only, bounded in time, one after the
# other so they do not share the cores. Each prints its figures as ratios to rates
# measured in the same run (openssl speed rsa2048, the raw RSA verify rate, the peer).
#
#   make bench                     # all, ~20 minutes on 2 cores
#   BENCH="saturation jwks" make bench
#   DURATION=8 make bench          # shorter wrk runs
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
PY="$REPO/.venv/bin/python"
BENCH="${BENCH:-saturation hot_path cors algorithms jwks refresh login_jwks verifier tracing}"
DURATION="${DURATION:-10}"
OUT="${BENCH_OUT:-$(mktemp -d "${TMPDIR:-/tmp}/authd-bench.XXXXXX")}"

command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
# The peer (../shared/bench/bench_oidc_provider.sh) runs on node; npm installs it there.
command -v npm >/dev/null || { apt-get update -qq && apt-get install -y -qq nodejs npm >/dev/null; }
bash "$REPO/tests/services.sh" >/dev/null

section() { printf '\n===== %s =====\n' "$1"; }
for name in $BENCH; do
  case "$name" in
    saturation)
      # Issue 15: openssl, the bare stack, the peer, authd on SQLite and on PostgreSQL +
      # Redis with 1 and 2 workers at c=8/64, JWKS, shedding at c=512, and the ratios.
      # SECTIONS="openssl bare peer sqlite postgres" picks parts (bench_saturation.py).
      section "Under saturation (DESIGN §7): floor, peer, authd 1 and 2 workers, shedding"
      DURATION="$DURATION" "$PY" "$HERE/bench_saturation.py" 2>"$OUT/saturation.err" | tee "$OUT/saturation.txt" ;;
    hot_path)
      # What authd adds to a token outside the signature, in-process through uvicorn's
      # own protocol: instructions per request under callgrind (the same from run to
      # run, whatever the machine does), then microseconds (bench_hot_path.py).
      command -v valgrind >/dev/null || { apt-get update -qq && apt-get install -y -qq valgrind >/dev/null; }
      section "Hot path in-process: authd's /v1/token and /oauth/token beside the bare app, signature stubbed"
      { "$PY" "$HERE/bench_hot_path.py" --callgrind && "$PY" "$HERE/bench_hot_path.py"; } \
        2>"$OUT/hot_path.err" | tee "$OUT/hot_path.txt" ;;
    exchange)
      section "API-key exchange (DESIGN §7), 1 and 2 workers, beside the peer"
      DURATION="$DURATION" bash "$HERE/bench_exchange.sh" 2>"$OUT/exchange.err" | tee "$OUT/exchange.txt" ;;
    cors)
      # With AUTHD_CORS_ORIGINS unset the app is not wrapped at all; set, a token
      # request pays one dictionary miss (service/http/cors.py, ~1 us). In the order
      # unset, set, set, unset, so a drift of the machine's load shows as such.
      section "API-key exchange, one worker, AUTHD_CORS_ORIGINS unset vs set"
      for origins in unset https://app.example.com https://app.example.com unset; do
        value="$origins"; [[ "$value" == unset ]] && value=""
        line="$(AUTHD_CORS_ORIGINS="$value" WORKERS=1 PEER=0 DURATION="$DURATION" \
          bash "$HERE/bench_exchange.sh" 2>>"$OUT/cors.err" | grep '^authd 1w')"
        echo "AUTHD_CORS_ORIGINS=$origins: $line"
      done | tee "$OUT/cors.txt" ;;
    algorithms)
      # Issue 16: one worker's exchange per server CPU-second for RS256, ES256, EdDSA,
      # then the verifier's rate for each beside its raw verify rate.
      section "Signing algorithms: exchange per server CPU-second, verifier per algorithm"
      DURATION="$DURATION" bash "$HERE/bench_algorithms.sh" 2>"$OUT/algorithms.err" | tee "$OUT/algorithms.txt"
      # The floor: the bare stack's own token endpoint per algorithm (what any service
      # on this stack can gain from a cheaper signature on this machine).
      DURATION="$DURATION" "$PY" "$HERE/bench_bare_algorithms.py" 2>>"$OUT/algorithms.err" | tee -a "$OUT/algorithms.txt"
      "$PY" "$REPO/verifier/bench/bench_algorithms.py" 2>>"$OUT/algorithms.err" | tee -a "$OUT/algorithms.txt" ;;
    jwks)
      section "JWKS on one worker vs the exchange"
      bash "$HERE/bench_jwks.sh" --duration "$DURATION" 2>"$OUT/jwks.err" | tee "$OUT/jwks.txt" ;;
    refresh)
      section "Refresh rotation per server CPU-second, PostgreSQL + Redis and SQLite"
      "$PY" "$HERE/bench_refresh.py" --seconds "$DURATION" 2>"$OUT/refresh.err" | tee "$OUT/refresh.txt" ;;
    login_jwks)
      section "JWKS while logins run flat out"
      "$PY" "$HERE/bench_login_jwks.py" --seconds "$DURATION" 2>"$OUT/login_jwks.err" | tee "$OUT/login_jwks.txt" ;;
    verifier)
      section "Verifier library, first-seen tokens vs raw RSA verify"
      "$PY" "$REPO/verifier/bench/bench_verify.py" 2>"$OUT/verifier.err" | tee "$OUT/verifier.txt"
      # The same sources uncompiled, for reference: what a machine without a C
      # compiler installs (verifier/setup.py falls back to them).
      section "Verifier library, pure-Python flavour (reference)"
      PYTHONPATH="$REPO/verifier/src" "$PY" "$REPO/verifier/bench/bench_verify.py" \
        2>"$OUT/verifier-python.err" | tee "$OUT/verifier-python.txt" ;;
    tracing)
      # Issue 19 §5: with no OTEL_* variable the app and its storage, Redis and issuer
      # are not wrapped at all; with an endpoint set every request exports a SERVER
      # span and its children (batched, from a thread) to a local sink
      # (otlp_sink.py). In the order unset, on, on, unset, as the cors section.
      section "API-key exchange, one worker, tracing unset vs on (OTLP/HTTP to a local sink)"
      SINK_PORT="$("$PY" -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')"
      "$PY" "$HERE/otlp_sink.py" "$SINK_PORT" 2>>"$OUT/tracing.err" &
      SINK_PID=$!
      for mode in unset on on unset; do
        endpoint=""; [[ "$mode" == on ]] && endpoint="http://127.0.0.1:$SINK_PORT"
        line="$(OTEL_EXPORTER_OTLP_ENDPOINT="$endpoint" WORKERS=1 PEER=0 DURATION="$DURATION" \
          bash "$HERE/bench_exchange.sh" 2>>"$OUT/tracing.err" | grep '^authd 1w')"
        echo "tracing $mode: $line"
      done | tee "$OUT/tracing.txt"
      kill "$SINK_PID"
      "$PY" "$HERE/bench_span_cost.py" 2>>"$OUT/tracing.err" | tee -a "$OUT/tracing.txt" ;;
    floor)
      section "Python floor (../shared/bench): Starlette + PyJWT, one worker"
      DURATION="$DURATION" CONNS=64 bash "$REPO/../shared/bench/bench_python_floor.sh" 2>"$OUT/floor.err" | tee "$OUT/floor.txt" ;;
    *) echo "unknown benchmark: $name" >&2; exit 2 ;;
  esac
done
echo
echo "outputs and logs: $OUT"
