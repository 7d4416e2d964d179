#!/usr/bin/env bash
# bench/ws_fanout.sh: WebSocket fan-out of the relay (issue 13): N (1000)
# WebSocket clients on one relay all following one execution through the
# same client stream (/ws?clientId=), against the baseline of N SSE
# clients on the same relay following one execution
# (/executions/{id}/events), in the same run, through the real stack on
# loopback. Events are XADDed straight into Redis by the client (as the
# sandbox helper would): EVENTS stdout entries INTERVAL_MS apart, each
# carrying its send time, then a result; the latency of an event is its
# receive time at a client minus its send time, over every event of every
# client. The two kinds alternate, REPS runs each (the machine's cores are
# shared). Goal: WebSocket p99 <= 100 ms.
#
#   sudo bench/ws_fanout.sh        # env: N=1000 REPS=3 EVENTS=20 INTERVAL_MS=100
#
# Starts its own stack (state/bench-ws, 127.0.0.1:18097) and stops it on
# exit. The client is bench/sse_load.c (--ws for WebSocket), built here.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
N=${N:-1000}
REPS=${REPS:-3}
EVENTS=${EVENTS:-20}
INTERVAL_MS=${INTERVAL_MS:-100}
export SP_STATE_DIR=${SP_STATE_DIR:-$ROOT/state/bench-ws}
export SP_DEFAULT_TEMPLATE=host SP_BUILTIN_TEMPLATES=""
export SP_LISTEN=${SP_LISTEN:-127.0.0.1:18097}
unset REDIS_URL SP_ENV_FILE
OUT=$SP_STATE_DIR/out
BIN=$SP_STATE_DIR/sse_load

die() { echo "ws_fanout.sh: $*" >&2; exit 1; }
say() { echo "ws_fanout.sh: $*" >&2; }
[ "$(id -u)" -eq 0 ] || die "run as root (the sandbox helper needs it)"
[[ $N =~ ^[0-9]+$ ]] && [ "$N" -ge 1 ] && [ "$N" -le 20000 ] || die "N: 1..20000"
[[ $REPS =~ ^[0-9]+$ ]] && [ "$REPS" -ge 1 ] && [ "$REPS" -le 10 ] || die "REPS: 1..10"
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
NOFILE=$(ulimit -n)
[ "$NOFILE" -ge $((N + 256)) ] || die "open-file limit $NOFILE is below N+256"

cleanup() {
    "$ROOT/sandpipe" down >/dev/null 2>&1 || true
    rm -rf "$SP_STATE_DIR/redis" "$SP_STATE_DIR/api_key" 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

"$ROOT/sandpipe" down >/dev/null 2>&1 || true
rm -rf "$SP_STATE_DIR" 2>/dev/null || say "some of $SP_STATE_DIR stayed"
mkdir -p "$OUT"
gcc -O2 -Wall -Wextra -o "$BIN" "$ROOT/bench/sse_load.c"
say "starting the stack (log: $OUT/up.log)"
SP_APIKEY_RATE=999999 SP_APIKEY_BURST=999999 "$ROOT/sandpipe" up >"$OUT/up.log" 2>&1 ||
    { cat "$OUT/up.log"; die "up failed"; }
KEY=$(cat "$SP_STATE_DIR/api_key")
RUN=$SP_STATE_DIR/run
SSE_PID=$(cat "$RUN/sp-sse.pid")
export SP_API_KEY=$KEY

kv() { grep -m1 '^sse_load: ' "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"; }
run() {
    local name=$1; shift
    timeout -k 5 300 "$BIN" -H "$SP_LISTEN" --inject "$RUN/redis.sock" -n "$N" \
        -e "$EVENTS" -i "$INTERVAL_MS" --lat --rss-pid "$SSE_PID" --timeout 120 \
        --conc 256 "$@" >"$OUT/$name" 2>"$OUT/$name.err" || true
    grep '^sse_load: ' "$OUT/$name" >&2 || { cat "$OUT/$name.err" >&2; die "$name: no result"; }
}
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

SSE_P99=() SSE_P50=() WS_P99=() WS_P50=() SSE_OK=() WS_OK=() WS_RSS=()
for ((r = 1; r <= REPS; r++)); do
    say "run $r/$REPS: $N SSE clients (baseline)"
    run "sse_$r"
    SSE_P99+=("$(kv "$OUT/sse_$r" lat_p99_ms)")
    SSE_P50+=("$(kv "$OUT/sse_$r" lat_p50_ms)")
    SSE_OK+=("$(kv "$OUT/sse_$r" complete)/$N")
    sleep 1
    say "run $r/$REPS: $N WebSocket clients"
    run "ws_$r" --ws
    WS_P99+=("$(kv "$OUT/ws_$r" lat_p99_ms)")
    WS_P50+=("$(kv "$OUT/ws_$r" lat_p50_ms)")
    WS_OK+=("$(kv "$OUT/ws_$r" complete)/$N")
    WS_RSS+=("$(kv "$OUT/ws_$r" rss_max_kb)")
    sleep 1
done

WSM=$(median "${WS_P99[@]}")
SSEM=$(median "${SSE_P99[@]}")
RATIO=$(awk -v a="$WSM" -v b="$SSEM" 'BEGIN {printf "%.2f", (b > 0) ? a / b : 0}')
echo
echo "WebSocket fan-out ($(date -u +%FT%TZ), $(nproc) CPUs, $N clients," \
    "$EVENTS events ${INTERVAL_MS} ms apart, $REPS runs each)"
printf '%-34s | %-34s | %s\n' "" "SSE (baseline)" "WebSocket"
printf '%-34s | %-34s | %s\n' "complete clients" "${SSE_OK[*]}" "${WS_OK[*]}"
printf '%-34s | %-34s | %s\n' "delivery p50, ms" "${SSE_P50[*]}" "${WS_P50[*]}"
printf '%-34s | %-34s | %s\n' "delivery p99, ms" "${SSE_P99[*]}" "${WS_P99[*]}"
printf '%-34s | %-34s | %s\n' "median p99, ms" "$SSEM" "$WSM (x$RATIO of SSE)"
echo "relay RSS at most during the WebSocket runs: ${WS_RSS[*]} kB"
echo "goal WebSocket p99 <= 100 ms: $(awk -v v="$WSM" 'BEGIN {print (v + 0 <= 100) ? "met" : "NOT met"}')"
echo "raw results in $OUT"
