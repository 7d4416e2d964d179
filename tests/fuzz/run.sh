#!/bin/sh
# tests/fuzz/run.sh: builds each libFuzzer harness of tests/fuzz/ against
# the sources it tests (not the autotools build: the product files are
# compiled with the harness, instrumented) in a temporary work directory,
# never the source tree, and runs each for a bounded time on a copy of its
# seed corpus, so the checked-in corpus only changes by hand.
#
# Usage: tests/fuzz/run.sh [TARGET...]   (default: every fuzz_*.c)
# Env:   SP_FUZZ_SECONDS  seconds per target (default 20)
#        SP_FUZZ_KEEP=1   keep the work directory (binaries, grown corpora)
#        SP_FUZZ_CRASH_DIR  where crashing inputs are kept (default
#                         state/fuzz-crashes, git-ignored)
#        SP_WERROR=1 or CI=true  warnings are errors (./sandpipe test)
# Prints "fuzz <name>: ok (<runs> runs)" or "fuzz <name>: FAIL <crash file>"
# per target; exits 1 if any failed, 0 (after saying so) without clang or
# its libFuzzer runtime.
set -u

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
secs=${SP_FUZZ_SECONDS:-20}
crashes=${SP_FUZZ_CRASH_DIR:-$root/state/fuzz-crashes}
pkgs="hiredis libcjson libjwt libcrypto fcgi"

# Product sources each harness is linked with.
sources()
{
    case $1 in
    multipart) echo common/sp_multipart.c ;;
    jwt) echo common/sp_jwt.c common/sp_id.c ;;
    utf8) echo common/sp_utf8.c common/sp_buf.c ;;
    config) echo common/sp_config.c common/sp_log.c ;;
    fcgi) echo sse/sse_fcgi.c ;;
    event) echo sse/sse_event.c sse/sse_fcgi.c common/sp_frame.c \
        common/sp_utf8.c common/sp_buf.c ;;
    tspec) echo common/sp_tspec.c common/sp_utf8.c common/sp_buf.c ;;
    netpol) echo common/sp_netpol.c common/sp_dns.c ;;
    storage) echo common/sp_s3xml.c common/sp_objname.c common/sp_utf8.c \
        common/sp_buf.c ;;
    *) return 1 ;;
    esac
}

# Longest input per target (tokens and secrets go up to 4096 bytes).
max_len()
{
    case $1 in
    jwt | config) echo 4300 ;;
    tspec) echo 8192 ;;
    *) echo 4096 ;;
    esac
}

if ! command -v clang >/dev/null 2>&1; then
    echo "fuzz: clang not found, fuzzing skipped"
    exit 0
fi
case $secs in
'' | *[!0-9]*) echo "fuzz: SP_FUZZ_SECONDS must be a number" >&2; exit 2 ;;
esac

if [ $# -gt 0 ]; then
    targets=$*
else
    targets=""
    for f in "$here"/fuzz_*.c; do
        f=${f##*/fuzz_}
        targets="$targets ${f%.c}"
    done
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/sp-fuzz.XXXXXX") || exit 1
if [ "${SP_FUZZ_KEEP:-0}" = 1 ]; then
    echo "fuzz: work directory $work"
else
    trap 'rm -rf "$work"' EXIT
fi
trap 'exit 130' INT TERM
mkdir -p "$crashes" || exit 1

# clang without its runtimes (libclang-rt-14-dev) cannot link libFuzzer.
echo 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n);
int LLVMFuzzerTestOneInput(const char *d, unsigned long n) { return 0; }' \
    >"$work/probe.c"
if ! clang -fsanitize=fuzzer,address,undefined -o "$work/probe" \
    "$work/probe.c" >/dev/null 2>&1; then
    echo "fuzz: clang cannot link libFuzzer (libclang-rt-14-dev missing?)," \
        "fuzzing skipped"
    exit 0
fi

# shellcheck disable=SC2086 # $pkgs is a list of names
cflags="-std=gnu11 -D_GNU_SOURCE -g -O1 -Wall -Wextra -Wno-unused-parameter
    -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
    -fno-omit-frame-pointer -I$root/common -I$root/sse -I$here
    $(pkg-config --cflags $pkgs)"
# shellcheck disable=SC2086
libs=$(pkg-config --libs $pkgs)
if [ "${SP_WERROR:-}" = 1 ] || [ "${CI:-}" = true ]; then
    cflags="$cflags -Werror"
fi

failed=0
for t in $targets; do
    src=$(sources "$t") || {
        echo "fuzz $t: FAIL (no such target)"
        failed=1
        continue
    }
    bin=$work/fuzz_$t
    files=""
    for s in $src; do files="$files $root/$s"; done
    # shellcheck disable=SC2086 # word splitting of flag lists is wanted
    if ! clang $cflags -o "$bin" "$here/fuzz_$t.c" $files $libs \
        >"$work/$t.build" 2>&1; then
        echo "fuzz $t: FAIL (build failed)"
        cat "$work/$t.build"
        failed=1
        continue
    fi
    mkdir -p "$work/corpus_$t"
    seeds=$here/corpus/$t
    [ -d "$seeds" ] || seeds=""
    dict=""
    [ -f "$here/$t.dict" ] && dict="-dict=$here/$t.dict"
    # shellcheck disable=SC2086
    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
        ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 \
        "$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
        -max_len="$(max_len "$t")" -print_final_stats=1 \
        -artifact_prefix="$crashes/$t-" $dict \
        "$work/corpus_$t" $seeds >"$work/$t.log" 2>&1
    rc=$?
    crash=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$work/$t.log" |
        tail -n 1)
    if [ $rc -ne 0 ] || [ -n "$crash" ]; then
        echo "fuzz $t: FAIL ${crash:-(exit $rc, no crash file)}"
        # The report: sanitizer or invariant message and the stack.
        grep -E -A 30 'ERROR: |invariant failed|runtime error|deadly signal' \
            "$work/$t.log" | head -n 60
        failed=1
        continue
    fi
    runs=$(sed -n 's/^stat::number_of_executed_units: *\([0-9]*\).*/\1/p' \
        "$work/$t.log" | tail -n 1)
    echo "fuzz $t: ok (${runs:-?} runs)"
done
exit $failed
