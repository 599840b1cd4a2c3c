#!/bin/bash
# Call 4 (carry [".whl"], right after run3.sh on the same machine): the seed recipe and the warm sweep (<= 50% of the
# seed loop) with the cache the cold sweep of run2.sh and the builds of run3.sh left in /tmp/sweepcache, and `h100` as run3.sh
# found it best (levers.sh).
cd "$(dirname "$0")/../.." && source benchmarks/h200-2026-12-02f/sweep.sh
[ -d /tmp/sweepcache/compiled/artifacts ] || { echo "no cache from run2.sh: a fresh machine"; exit 3; }
source benchmarks/h200-2026-12-02f/levers.sh; sweep_call 585 warm
