#!/usr/bin/env bash
# Benchmark (issue 16): the API-key exchange per server CPU-second for each signing
# algorithm, one worker, c=64, PostgreSQL + Redis, in one run: bench_exchange.sh once
# per AUTHD_SIGNING_ALG (a fresh database each, so `authd migrate` records the
# algorithm and the first key set is made in it), in the order RS256 ES256 EdDSA RS256
# so that a drift of the machine's load shows as a gap between the two RS256 rows.
# Then each algorithm's tokens per CPU-second as a multiple of RS256's (the mean of
# the two RS256 rows); DESIGN §7 expects ES256 and EdDSA >= 3 x RS256.
#
#   bash tests/bench/bench_algorithms.sh          # DURATION (10) WARMUP (5) CONNS (64)
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
TARGET=3
declare -A PER
for alg in RS256 ES256 EdDSA RS256; do
  line="$(AUTHD_SIGNING_ALG="$alg" WORKERS=1 PEER=0 DURATION="${DURATION:-10}" \
    bash "$HERE/bench_exchange.sh" | grep '^authd 1w')"
  # Only the measured fields: the rest of bench_exchange.sh's line states the
  # exchange's own targets (against openssl and the peer), not this issue's.
  tok="$(sed -n 's/^authd 1w: \([0-9][0-9]*\) tokens\/s.*/\1/p' <<<"$line")"
  cpu="$(sed -n 's/.* cpu \([0-9.][0-9.]*\),.*/\1/p' <<<"$line")"
  per="$(sed -n 's/.* \([0-9][0-9]*\) tokens\/cpu_s.*/\1/p' <<<"$line")"
  echo "$alg: ${tok:-n/a} tokens/s, ${cpu:-n/a} server cores, ${per:-n/a} tokens per server CPU-second"
  if [[ "$alg" == RS256 && -n "${PER[RS256]:-}" ]]; then
    PER[RS256]="$(awk -v a="${PER[RS256]}" -v b="$per" 'BEGIN{printf "%.0f", (a+b)/2}')"
  else
    PER[$alg]="$per"
  fi
done
for alg in ES256 EdDSA; do
  awk -v a="${PER[$alg]}" -v b="${PER[RS256]}" -v n="$alg" -v t="$TARGET" 'BEGIN{
    if (a+0 > 0 && b+0 > 0) { r = a / b; printf "%s / RS256 exchange tokens per server CPU-second = %.2f (target >= %d: %s)\n", n, r, t, (r >= t ? "ok" : "MISSED") }
    else printf "%s / RS256 exchange tokens per server CPU-second = n/a (target >= %d: MISSED, no figure)\n", n, t }'
done
