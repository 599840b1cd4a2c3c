#!/bin/bash
# Device call 2 (issue 11): the bench's seed recipe and warm sweep with the fused GEGLU launched by inductor's static
# launcher (saved in the artifact: the first process after a build no longer compiles it, 4.9-6.3 s UNet loads in
# `-02c`). As `-02c/run2.sh`: the seed recipe's per-video time (1 warm-up + 1 timed video), then `python run.py
# model=svd_xt model.init=random` over 3 images x 4 motion_bucket_id x 2 seeds with hardware=auto, W&B offline, after
# one untimed run that fills the cache (it waits for its builds). The sweep is the first process after the prime.
cd "$(dirname "$0")/../.." && source benchmarks/h200-2026-12-01c/common.sh
bench_call 585 'bench.seed_recipes=[seed_offload]' 'bench.profiles=[]' 'bench.sweep.modes=[warm]' \
  bench.reference=seed_offload bench.jobs=1
for f in /tmp/b/bench/sweep-*.log; do tr '\r' '\n' < $f | grep -v "^videos:\|^\s*$" > $OUT/$(basename $f); done
cp /tmp/b/bench/sweep-warm/index.csv $OUT/sweep-warm-index.csv 2>/dev/null
grep -h "loaded compiled\|Statically\|static" $OUT/sweep-*.log | cut -c1-200 | head
