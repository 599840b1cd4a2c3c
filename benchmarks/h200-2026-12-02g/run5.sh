#!/bin/bash
# For the next session (NOT RUN: no device time was left; carry [".whl"], right after run4.sh on the same machine):
# the seed recipe and the warm sweep (<= 50% of the seed loop) on the cache the cold sweep of run4.sh left in
# /tmp/sweepcache: by then it holds the whole UNet's graph (built after its parts, and run once by that sweep), which
# a warm run loads instead of the parts.
cd "$(dirname "$0")/../.." && source benchmarks/h200-2026-12-02f/sweep.sh
[ -d /tmp/sweepcache/compiled/artifacts ] || { echo "no cache from run4.sh: a fresh machine"; exit 3; }
sweep_call 585 warm
grep -h "loaded compiled" $OUT/sweep-warm.log | cut -c1-160
