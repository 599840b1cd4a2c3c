#!/bin/bash
# Call 5 (carry [".whl"], right after run4.sh on the same machine): the seed recipe and the warm sweep (<= 50% of the
# seed loop) on the cache the cold sweep of run4.sh left in /tmp/sweepcache (its graphs tuned by that run).
cd "$(dirname "$0")/../.." && source benchmarks/h200-2026-12-02f/sweep.sh
[ -d /tmp/sweepcache/compiled/artifacts ] || { echo "no cache from run4.sh: a fresh machine"; exit 3; }
sweep_call 585 warm
