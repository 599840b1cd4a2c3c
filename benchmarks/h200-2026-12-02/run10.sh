#!/bin/bash
# Device call for the next session (an H100 or H200; issue 11), NOT RUN yet: the sweep target's warm half on today's
# code. The seed recipe's per-video time (1 warm-up + 1 timed video), then `python run.py model=svd_xt
# model.init=random` over 3 images x 4 motion_bucket_id x 2 seeds with hardware=auto, after one untimed run that
# leaves the compiled graphs in the cache (it waits for its builds): the whole command's wall clock, its first video
# (the warm start) and its fraction of the seed loop. ~9 min: near a call's limit.
cd "$(dirname "$0")/../.." && source benchmarks/h200-2026-12-01c/common.sh
bench_call 585 'bench.seed_recipes=[seed_offload]' 'bench.profiles=[]' 'bench.sweep.modes=[warm]' \
  bench.reference=seed_offload bench.jobs=1
cp /tmp/b/bench/sweep-*.log $OUT/ 2>/dev/null
