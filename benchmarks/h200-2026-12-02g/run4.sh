#!/bin/bash
# Call 4 (carry [".whl"], right after ../h200-2026-12-02e/run1a.sh and ../h200-2026-12-02f/run1b.sh on the same
# machine: FlashAttention-4 installed): the seed recipe and the cold sweep (issue 11, item 6: <= 60% of the seed loop)
# on this session's code: the UNet in 3 parts built at once, builders on standby from the plan, no tuning run in the
# builders. An empty cache in /tmp/sweepcache, kept for run5.sh.
cd "$(dirname "$0")/../.." && source benchmarks/h200-2026-12-02f/sweep.sh
rm -rf /tmp/sweepcache; sweep_call 585 cold
grep -h "standby\|imports done\|compiled in\|stored" $OUT/builds.txt | cut -c1-160
