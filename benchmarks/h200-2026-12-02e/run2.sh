#!/bin/bash
# Call 2 (carry [".whl"], right after run1b.sh on the same warm machine): the bench's seed recipe and warm sweep on
# this session's code (artifacts prefetched, one compile thread at load, no second reduction configuration, the
# GEGLU statically launched, grids as images finish), with FlashAttention-4 in the `h100` profile when run1b.sh's
# step A/B found it faster (fa4_env.sh). As `../h200-2026-12-02d/run2.sh`: the seed recipe's per-video time (1
# warm-up + 1 timed video), then `python run.py model=svd_xt model.init=random` over 3 images x 4 motion_bucket_id x 2
# seeds with hardware=auto, W&B offline, after one untimed run that fills the cache (it waits for its builds).
cd "$(dirname "$0")/../.." && source benchmarks/h200-2026-12-01c/common.sh
source benchmarks/h200-2026-12-02e/fa4_env.sh; use_fa4
bench_call 585 'bench.seed_recipes=[seed_offload]' 'bench.profiles=[]' 'bench.sweep.modes=[warm]' \
  bench.reference=seed_offload bench.jobs=1
for f in /tmp/b/bench/sweep-*.log; do tr '\r' '\n' < $f | grep -v "^videos:\|^\s*$" > $OUT/$(basename $f); done
cp /tmp/b/bench/sweep-warm/index.csv $OUT/sweep-warm-index.csv 2>/dev/null
grep -h "loaded compiled\|FlashAttention\|attention" $OUT/sweep-*.log | cut -c1-200 | head
