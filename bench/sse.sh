#!/usr/bin/env bash
# bench/sse.sh: the SSE relay's benchmarks (issue 4), each next to a
# baseline measured in the same run, through the real stack on loopback:
#
#  1. N (5000) concurrent streams on one execution: every stream gets every
#     event in order; relay RSS; delivery p99. Events are XADDed straight
#     into Redis by the client (as the sandbox helper would), 20 of them
#     100 ms apart, each carrying its send time. Baseline: 1 stream, same
#     events. Repeated REPS times (the VM's 2 cores are shared).
#  2. print-to-client latency: a sandbox program (background command)
#     writes "<seq> <CLOCK_REALTIME ns>" every 20 ms; the client compares.
#     Baseline: the same program in bare bwrap, read through a pipe.
#  3. relay throughput of a program writing 100,000,000 bytes
#     (seq ... | head -c 100000000, deterministic so the client checks a
#     hash of what arrived). Baseline: the same program in bare bwrap,
#     output to /dev/null.
#
#   sudo bench/sse.sh            # env: N=5000 REPS=3 EVENTS=20 INTERVAL_MS=100
#
# Starts its own stack (state/bench-sse, 127.0.0.1:18098) and stops it on
# exit. The load client is bench/sse_load.c, built here with gcc -O2.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
N=${N:-5000}
REPS=${REPS:-3}
EVENTS=${EVENTS:-20}
INTERVAL_MS=${INTERVAL_MS:-100}
TPUT_REPS=${TPUT_REPS:-2}
export SP_STATE_DIR=$ROOT/state/bench-sse
export SP_DEFAULT_TEMPLATE=host SP_BUILTIN_TEMPLATES=""
export SP_LISTEN=127.0.0.1:18098
# Output cap and stream length big enough for 100 MB in one execution.
export SP_OUTPUT_MAX=200000000 SP_STREAM_MAXLEN=100000
unset REDIS_URL SP_ENV_FILE
OUT=$SP_STATE_DIR/out
BIN=$SP_STATE_DIR/sse_load
H=http://$SP_LISTEN
BWRAP=(bwrap --unshare-all --die-with-parent --ro-bind /usr /usr
    --symlink usr/bin /bin --symlink usr/lib /lib --symlink usr/lib64 /lib64
    --proc /proc --dev /dev --tmpfs /tmp)
LAT_PROG='python3 -c "import os, time
time.sleep(0.3)
for i in range(250):
    os.write(1, b\"%d %d\n\" % (i, time.time_ns())); time.sleep(0.02)"'
TPUT_PROG='seq 1000000000 1009090909 | head -c 100000000'
TPUT_BYTES=100000000

die() { echo "sse.sh: $*" >&2; exit 1; }
say() { echo "sse.sh: $*" >&2; }
[ "$(id -u)" -eq 0 ] || die "run as root (the sandbox helper needs it)"
[[ $N =~ ^[0-9]+$ ]] && [ "$N" -ge 1 ] && [ "$N" -le 20000 ] || die "N: 1..20000"
[[ $REPS =~ ^[0-9]+$ ]] && [ "$REPS" -ge 1 ] && [ "$REPS" -le 10 ] || die "REPS: 1..10"
[[ $TPUT_REPS =~ ^[0-9]+$ ]] && [ "$TPUT_REPS" -ge 1 ] && [ "$TPUT_REPS" -le 10 ] ||
    die "TPUT_REPS: 1..10"

# File descriptors: the client holds N sockets, the relay N, and each nginx
# worker 2 per stream it serves; all inherit this shell's limit (the relay
# raises its soft limit to the hard one itself). Without CAP_SYS_RESOURCE
# the hard limit cannot be raised, only reached.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
ulimit -n 1048576 2>/dev/null || true
NOFILE=$(ulimit -n)
[ "$NOFILE" -ge $((N + 256)) ] || die "open-file limit $NOFILE is below N+256 ($N streams)"

cleanup() {
    [ -n "${SBX:-}" ] && curl -s -m 10 -X DELETE "$H/sandboxes/$SBX" -H "X-API-Key: $KEY" \
        >/dev/null 2>&1 || true
    "$ROOT/sandpipe" down >/dev/null 2>&1 || true
    # The events of the 100 MB runs would stay in Redis's append-only file;
    # the API key goes with the Redis that knew it.
    rm -rf "$SP_STATE_DIR/redis" "$SP_STATE_DIR/api_key" 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

"$ROOT/sandpipe" down >/dev/null 2>&1 || true # what an earlier run left
rm -rf "$SP_STATE_DIR" 2>/dev/null || say "some of $SP_STATE_DIR stayed"
mkdir -p "$OUT"
gcc -O2 -Wall -Wextra -o "$BIN" "$ROOT/bench/sse_load.c"
say "starting the stack (log: $OUT/up.log)"
SP_APIKEY_RATE=999999 SP_APIKEY_BURST=999999 "$ROOT/sandpipe" up >"$OUT/up.log" 2>&1 || { cat "$OUT/up.log"; die "up failed"; }
KEY=$(cat "$SP_STATE_DIR/api_key")
RUN=$SP_STATE_DIR/run
SSE_PID=$(cat "$RUN/sp-sse.pid")
NGINX_WORKERS=$(pgrep -P "$(cat "$RUN/nginx.pid")" | tr '\n' ' ')
WORKER_CONNS=$(sed -n 's/^ *worker_connections *\([0-9]*\);/\1/p' \
    "$SP_STATE_DIR/nginx/conf/nginx.conf")
WATCH=(--watch "sp-sse=$SSE_PID" --watch "redis=$(cat "$RUN/redis.pid")"
    --watch "sp-helperd=$(cat "$RUN/sp-helperd.pid")")
for p in $NGINX_WORKERS; do WATCH+=(--watch "nginx-worker=$p"); done
export SP_API_KEY=$KEY

# kv FILE KEY: the value of KEY= on the client's result line.
kv() { grep -m1 '^sse_load: ' "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"; }
# run NAME ARGS...: the client, bounded in time; output kept in $OUT/NAME.
run() {
    local name=$1; shift
    timeout -k 5 300 "$BIN" -H "$SP_LISTEN" "$@" >"$OUT/$name" 2>"$OUT/$name.err" || true
    grep '^sse_load: ' "$OUT/$name" >&2 || { cat "$OUT/$name.err" >&2; die "$name: no result"; }
}
# median of the numbers given
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# --- 1. many streams -------------------------------------------------------
say "1. baseline: 1 stream, $EVENTS events ${INTERVAL_MS} ms apart"
run g1_base --inject "$RUN/redis.sock" -n 1 -e "$EVENTS" -i "$INTERVAL_MS" --lat \
    --rss-pid "$SSE_PID" --timeout 60
G1_P99=() G1_P50=() G1_RSS=() G1_OK=() G1_FDS=()
for ((r = 1; r <= REPS; r++)); do
    say "1. $N streams, run $r/$REPS"
    run "g1_$r" --inject "$RUN/redis.sock" -n "$N" -e "$EVENTS" -i "$INTERVAL_MS" --lat \
        --rss-pid "$SSE_PID" --timeout 120 --conc 256 "${WATCH[@]}"
    G1_P99+=("$(kv "$OUT/g1_$r" lat_p99_ms)")
    G1_P50+=("$(kv "$OUT/g1_$r" lat_p50_ms)")
    G1_RSS+=("$(kv "$OUT/g1_$r" rss_max_kb)")
    G1_OK+=("$(kv "$OUT/g1_$r" complete)/$(kv "$OUT/g1_$r" streams)")
    G1_FDS+=("$(grep '^sse_load: watch nginx-worker' "$OUT/g1_$r" |
        sed 's/.*fds_held=\([0-9-]*\).*/\1/' | paste -sd/)")
    sleep 1
done

# --- 2 and 3 need a sandbox ------------------------------------------------
SBX=$(curl -s -m 30 -X POST "$H/sandboxes" -H "X-API-Key: $KEY" \
    -H 'Content-Type: application/json' -d '{"timeout":900,"limits":{"cpus":2}}' |
    sed -n 's/.*"id":"\(sbx_[A-Za-z0-9_-]*\)".*/\1/p')
[ -n "$SBX" ] || die "could not create a sandbox"

say "2. baseline: the printing program in bare bwrap, through a pipe"
"${BWRAP[@]}" sh -c "$LAT_PROG" | timeout -k 5 60 "$BIN" --stdin --lat >"$OUT/g2_base"
cat "$OUT/g2_base" >&2
say "2. the same program as a background command, watched on SSE"
run g2 --post "$SBX" --cmd "$LAT_PROG" --lat --timeout 60

say "3. baseline: 100 MB program in bare bwrap to /dev/null"
B3=()
for ((r = 1; r <= 3; r++)); do
    t0=$(date +%s%N)
    "${BWRAP[@]}" sh -c "$TPUT_PROG" >/dev/null
    t1=$(date +%s%N)
    B3+=("$(awk -v b=$TPUT_BYTES -v ns=$((t1 - t0)) 'BEGIN {printf "%.1f", b / (ns / 1e9) / 1e6}')")
done
"${BWRAP[@]}" sh -c "$TPUT_PROG" | timeout -k 5 60 "$BIN" --stdin --hash >"$OUT/g3_base"
cat "$OUT/g3_base" >&2
HASH=$(kv "$OUT/g3_base" payload_hash)
G3=() G3E2E=() G3OK=() G3SPAN=()
for ((r = 1; r <= TPUT_REPS; r++)); do
    say "3. the same program as a background command, watched on SSE, run $r/$TPUT_REPS"
    run "g3_$r" --post "$SBX" --cmd "$TPUT_PROG" --hash --expect-hash "$HASH" \
        --expect-bytes "$TPUT_BYTES" --timeout 200 --rss-pid "$SSE_PID" "${WATCH[@]}"
    G3+=("$(kv "$OUT/g3_$r" payload_MBps)")
    G3E2E+=("$(kv "$OUT/g3_$r" payload_MBps_post)")
    G3OK+=("$(kv "$OUT/g3_$r" complete)")
    G3SPAN+=("$(kv "$OUT/g3_$r" ids_span_s)")
    # Its ~100 MB of events need not stay in Redis for the next run.
    redis-cli -s "$RUN/redis.sock" DEL "sp:events:$(kv "$OUT/g3_$r" exe)" >/dev/null || true
done

# --- the table ---------------------------------------------------------------
yn() { awk -v v="$1" -v g="$2" -v op="$3" 'BEGIN {
    ok = (op == "le") ? (v + 0 <= g + 0) : (v + 0 >= g + 0); print ok ? "met" : "NOT met" }'; }
P99M=$(median "${G1_P99[@]}")
RSSM=$(printf '%s\n' "${G1_RSS[@]}" | sort -n | tail -1)
RSSMB=$(awk -v k="$RSSM" 'BEGIN {printf "%.1f", k / 1024}')
ALLOK=yes
for x in "${G1_OK[@]}"; do [ "${x%/*}" = "${x#*/}" ] || ALLOK=no; done
G2P50=$(kv "$OUT/g2" lat_p50_ms)
G3M=$(median "${G3[@]}")
echo
echo "SSE relay benchmark ($(date -u +%FT%TZ), $(nproc) CPUs, nginx worker_connections" \
    "$WORKER_CONNS, open-file limit $NOFILE)"
printf '%-44s | %-22s | %-46s | %s\n' "goal" "baseline" "measured" "verdict"
printf '%s\n' "---------------------------------------------+------------------------+------------------------------------------------+--------"
printf '%-44s | %-22s | %-46s | %s\n' "1. $N streams all get all $((EVENTS + 1)) events" \
    "1 stream: $(kv "$OUT/g1_base" complete)/1" "complete ${G1_OK[*]}" \
    "$([ $ALLOK = yes ] && echo met || echo 'NOT met')"
printf '%-44s | %-22s | %-46s | %s\n' "1. relay RSS <= 250 MB" \
    "idle $(awk -v k="$(kv "$OUT/g1_base" rss_idle_kb)" 'BEGIN {printf "%.1f", k / 1024}') MB" \
    "max $RSSMB MB" "$(yn "$RSSMB" 250 le)"
printf '%-44s | %-22s | %-46s | %s\n' "1. delivery p99 <= 100 ms" \
    "1 stream: $(kv "$OUT/g1_base" lat_p99_ms) ms" "runs ${G1_P99[*]} ms (median $P99M)" \
    "$(yn "$P99M" 100 le)"
printf '%-44s | %-22s | %-46s | %s\n' "   (delivery p50, for reading)" \
    "1 stream: $(kv "$OUT/g1_base" lat_p50_ms) ms" "runs ${G1_P50[*]} ms" ""
printf '%-44s | %-22s | %-46s | %s\n' "2. print -> SSE client p50 <= 2 ms" \
    "pipe: $(kv "$OUT/g2_base" lat_p50_ms) ms" \
    "p50 $G2P50 p99 $(kv "$OUT/g2" lat_p99_ms) ms ($(kv "$OUT/g2" samples) lines)" \
    "$(yn "$G2P50" 2 le)"
printf '%-44s | %-22s | %-46s | %s\n' "3. 100 MB program, client MB/s >= 100" \
    "/dev/null: ${B3[*]} MB/s" "${G3[*]} MB/s (POST->last: ${G3E2E[*]})" "$(yn "$G3M" 100 ge)"
printf '%-44s | %-22s | %-46s | %s\n' "   (helper wrote them into Redis in, s)" "" \
    "${G3SPAN[*]} (first to last entry id)" ""
echo
echo "nginx fds per worker while $N streams were held (2 per stream): ${G1_FDS[*]}"
echo "data of 3: $(kv "$OUT/g3_1" payload_bytes) bytes, hash match in ${G3OK[*]} of the runs;" \
    "raw results in $OUT"
