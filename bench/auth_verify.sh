#!/usr/bin/env bash
# bench/auth_verify.sh: requests/s and p50/p99 of GET /api/auth/verify
# through nginx (JWT and API key), next to the same nginx configuration
# serving a small static file in the same run, as a ratio.
#
#   bench/auth_verify.sh [seconds] [connections]
#
# Starts its own stack (state in state/bench, port 18090) and stops it.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DUR=${1:-10}
CONN=${2:-64}
export SP_STATE_DIR=$ROOT/state/bench SP_LISTEN=127.0.0.1:18090
export SP_DEFAULT_TEMPLATE=host SP_BUILTIN_TEMPLATES=""
# Measure the handler, not the X-API-Key rate limit.
export SP_APIKEY_RATE=999999 SP_APIKEY_BURST=999999
STATIC_PORT=18091
unset REDIS_URL

cleanup() {
    [ -f "$SP_STATE_DIR/static/nginx.pid" ] &&
        kill "$(cat "$SP_STATE_DIR/static/nginx.pid")" 2>/dev/null || true
    "$ROOT/sandpipe" down >/dev/null 2>&1 || true
}
trap cleanup EXIT

"$ROOT/sandpipe" up >/dev/null
KEY=$(cat "$SP_STATE_DIR/api_key")
TOKEN=$(curl -fsS -X POST "http://$SP_LISTEN/api/auth/token" \
    -H 'Content-Type: application/json' -d "{\"api_key\":\"$KEY\"}" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')

# The baseline: nginx with the same worker settings serving a static file
# of about the size of a verify response.
S=$SP_STATE_DIR/static
mkdir -p "$S/tmp" "$S/www"
printf '{"valid":true,"sub":"admin","exp":1795294149}' >"$S/www/file.json"
cat >"$S/nginx.conf" <<CONF
daemon on;
worker_processes auto;
pid $S/nginx.pid;
error_log $S/error.log warn;
events { worker_connections 8192; }
http {
    access_log $S/access.log combined buffer=64k flush=1s;
    client_body_temp_path $S/tmp;
    keepalive_requests 100000;
    server {
        listen 127.0.0.1:$STATIC_PORT;
        location / { root $S/www; }
    }
}
CONF
nginx -c "$S/nginx.conf" -p "$S" -e "$S/error.log"

# run NAME URL [header]: prints "rps p50 p99" (latencies in ms).
run() {
    local url=$1; shift
    wrk -t2 -c"$CONN" -d"${DUR}s" --latency "$@" "$url" | awk '
        function ms(v) { if (v ~ /us$/) return v/1000; if (v ~ /ms$/) return v+0;
                         if (v ~ /s$/) return v*1000; return v }
        $1 == "50%" { p50 = ms($2) } $1 == "99%" { p99 = ms($2) }
        $1 == "Requests/sec:" { rps = $2 }
        /Non-2xx/ { bad = $NF }
        END { printf "%.0f %.3f %.3f %s\n", rps, p50, p99, bad + 0 }'
}

curl -fsS "http://127.0.0.1:$STATIC_PORT/file.json" >/dev/null
curl -fsS "http://$SP_LISTEN/api/auth/verify" -H "Authorization: Bearer $TOKEN" >/dev/null
read -r s_rps s_p50 s_p99 s_bad < <(run "http://127.0.0.1:$STATIC_PORT/file.json")
read -r j_rps j_p50 j_p99 j_bad < <(run "http://$SP_LISTEN/api/auth/verify" -H "Authorization: Bearer $TOKEN")
read -r k_rps k_p50 k_p99 k_bad < <(run "http://$SP_LISTEN/api/auth/verify" -H "X-API-Key: $KEY")

printf '\n%-34s %10s %9s %9s %7s\n' "GET, ${CONN} connections, ${DUR}s" "req/s" "p50 ms" "p99 ms" "ratio"
printf '%-34s %10s %9s %9s %7s\n' "nginx static file (baseline)" "$s_rps" "$s_p50" "$s_p99" "1.00"
printf '%-34s %10s %9s %9s %7.2f\n' "/api/auth/verify, Bearer JWT" "$j_rps" "$j_p50" "$j_p99" \
    "$(echo "$j_rps / $s_rps" | bc -l)"
printf '%-34s %10s %9s %9s %7.2f\n' "/api/auth/verify, X-API-Key" "$k_rps" "$k_p50" "$k_p99" \
    "$(echo "$k_rps / $s_rps" | bc -l)"
[ "$j_bad" = 0 ] && [ "$k_bad" = 0 ] || echo "warning: non-2xx responses: jwt=$j_bad key=$k_bad"
