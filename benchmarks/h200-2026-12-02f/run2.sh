#!/bin/bash
# Call 2 (carry [".whl"], right after run1b.sh): the seed recipe and the cold sweep (issue 11, item 6: <= 60% of the
# seed loop), on the code at c6795d0 (FlashAttention-4 in `h100`, `exit_now`, W&B's table sent after the jobs).
cd "$(dirname "$0")/../.." && source benchmarks/h200-2026-12-02f/sweep.sh
rm -rf /tmp/sweepcache; sweep_call 585 cold
