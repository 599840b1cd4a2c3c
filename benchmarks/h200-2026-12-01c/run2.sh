#!/bin/bash
# Device call 2 (nvidia-h200; issue 11): the bench with the conditioning image prepared on the device and each job's
# image and starting noise prepared one job ahead (fused_qkv on in h100): seed_offload, h100, h100_fast, 1 warm-up +
# 3 timed videos each; then between_profile.py again, for the encode stage and the main thread's work now.
cd "$(dirname "$0")/../.."
python3 -m pip install -q --no-index --no-deps --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 SVD_BATCH_CACHE=/tmp/svdcache
B=/tmp/b; mkdir -p $B; T1=$(date +%s)
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader > $OUT/env.txt
timeout 420 python3 -m svd_batch.bench output_dir=$B/bench 'bench.seed_recipes=[seed_offload]' \
  'bench.profiles=[h100,h100_fast]' bench.reference=seed_offload bench.jobs=3 bench.parallel_builds=4 > $B/bench.log 2>&1
echo "bench rc=$? $(( $(date +%s) - T1 )) s" >> $OUT/env.txt
cp $B/bench/bench.json $B/bench/bench.md $OUT/ 2>/dev/null
{ echo "== bench.log"; tr '\r' '\n' < $B/bench.log | grep -v "videos:\|^\s*$" | tail -c 60000; } > $OUT/logs.txt
mkdir -p $OUT/after
timeout 150 python3 benchmarks/h200-2026-12-01c/between_profile.py $OUT/after > $OUT/after/log.txt 2>&1
echo "profile rc=$?" >> $OUT/env.txt; rm -f $OUT/after/between-trace.json
cat $OUT/env.txt $OUT/bench.md 2>/dev/null; grep "rror\|Traceback" $OUT/logs.txt | cut -c1-300 | head -20
grep -v Warning $OUT/after/log.txt | tail -22
