#!/usr/bin/env python3
"""bench/e2b.py: E2B's SDK against sandpipe, next to the native routes in
the same run.

  sudo bench/e2b.py [--n 100] [--template base]

Starts its own stack (state in state/bench-e2b, port 18094; the pool of
ready sandboxes made of --template) and stops it; runs bench/e2b_sdk.mjs
with node (the e2b package of tests/sdk, installed by ./sandpipe test or
`npm ci` there). Prints p50/p99 of: commands.run('echo hi') through the
SDK and POST /sandboxes/{id}/commands in the same sandbox, one of each in
turn; Sandbox.create() -> first commands.run and native create -> first
command. Then the goals of issue 13: SDK run p50 <= 2 x native p50,
create -> first run p50 <= 50 ms."""
import argparse
import os
import subprocess

from benchlib import ROOT, stack

LISTEN = os.environ.get("BENCH_LISTEN", "127.0.0.1:18094")
STATE = os.path.join(ROOT, "state", "bench-e2b")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--template", default="base")
    a = ap.parse_args()
    with stack(STATE, LISTEN, SP_POOL_TEMPLATE=a.template,
               SP_BUILTIN_TEMPLATES=a.template
               if a.template != "host" else "") as key:
        url = f"http://{LISTEN}"
        benv = dict(os.environ, E2B_API_KEY=key, E2B_API_URL=url,
                    E2B_SANDBOX_URL=url, BENCH_N=str(a.n),
                    BENCH_TEMPLATE=a.template,
                    BENCH_SDK_DIR=os.path.join(ROOT, "tests", "sdk"))
        subprocess.run(["node", os.path.join(ROOT, "bench", "e2b_sdk.mjs")],
                       env=benv, cwd=os.path.join(ROOT, "tests", "sdk"),
                       check=True)


if __name__ == "__main__":
    main()
