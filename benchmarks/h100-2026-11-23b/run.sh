#!/bin/bash
# device run 1: bench (seed recipes vs h100 / h100_fast / resident), interval variants, warm starts; then, in a
# second call: python3 -m svd_batch.bench output_dir=... 'bench.seed_recipes=[]' \
#   'bench.profiles=["h100_fast hardware.step_cache_interval=5",resident]'  (-> interval5-bench.*)
# Note: h100_fast's default interval was 3 when this ran; it is 5 now.
cd "$(dirname "$0")/../.."  # the repository root
export SVD_BATCH_CACHE=/tmp/svdcache PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site:$PWD
B=/tmp/b; mkdir -p $B
{
date +%s > $B/t0
python3 -m svd_batch.bench output_dir=$B/main 'bench.seed_recipes=[seed_offload,seed_compile]' 'bench.profiles=[h100,h100_fast,resident]' > $B/main.log 2>&1
date +%s > $B/t1
python3 -m svd_batch.bench output_dir=$B/var 'bench.seed_recipes=[]' 'bench.profiles=[resident,"h100_fast hardware.step_cache_interval=2","h100_fast hardware.step_cache_interval=4","h100_fast hardware.step_cache_interval=3 hardware.step_cache_guidance=false"]' > $B/var.log 2>&1
date +%s > $B/t2
for hw in h100 h100_fast; do
  python3 run.py model=svd_xt model.init=random hardware=$hw output_dir=$B/warm-$hw tracking.mode=disabled sweep=none 'sweep.grid.seed=[0]' report.grids=false > $B/warm-$hw.log 2>&1
done
date +%s > $B/t3
} 
echo done > $B/finished
