#!/bin/bash
# Device call 2 (issue 11): the bench's seed recipe and warm sweep on this session's code: the fused GEGLU's check
# left to a first eager call (a warm process never launches it through Triton's JIT), a job's measures beside its
# export, W&B in its own process, the GEGLU kernel compiled into the artifact (triton_op). The seed recipe's
# per-video time (1 warm-up + 1 timed video), then `python run.py model=svd_xt model.init=random` over 3 images x 4
# motion_bucket_id x 2 seeds with hardware=auto, W&B offline, after one untimed run that fills the cache (it waits
# for its builds): the whole command's wall clock, its first video (the warm start) and its fraction of the seed loop.
cd "$(dirname "$0")/../.." && source benchmarks/h200-2026-12-01c/common.sh
bench_call 585 'bench.seed_recipes=[seed_offload]' 'bench.profiles=[]' 'bench.sweep.modes=[warm]' \
  bench.reference=seed_offload bench.jobs=1
for f in /tmp/b/bench/sweep-*.log; do tr '\r' '\n' < $f | grep -v "^videos:\|^\s*$" > $OUT/$(basename $f); done
cp /tmp/b/bench/sweep-warm/index.csv $OUT/sweep-warm-index.csv 2>/dev/null
