#!/bin/bash
# Device call 1 (nvidia-h200; issue 11): the seed recipe beside h100 and each lever alone on top of it: the fused
# GEGLU kernel, the VAE decoder's group norms in rows, cuDNN's per-shape algorithm timing; then the three together (no
# new graphs to build). The first try failed in every h100 entry: the temporal blocks' forward was a bound
# functools.partial, which torch 2.11's Dynamo does not trace (fixed: plain functions).
cd "$(dirname "$0")/../.."
python3 -m pip install -q --no-index --no-deps --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 SVD_BATCH_CACHE=/tmp/svdcache
B=/tmp/b; mkdir -p $B; T1=$(date +%s)
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader > $OUT/env.txt
timeout 560 python3 -m svd_batch.bench output_dir=$B/bench 'bench.seed_recipes=[seed_offload]' \
  'bench.profiles=[h100,"h100 hardware.fused_geglu=true","h100 hardware.vae_norms_in_rows=true","h100 hardware.cudnn_benchmark=true","h100 hardware.fused_geglu=true hardware.vae_norms_in_rows=true hardware.cudnn_benchmark=true"]' \
  bench.reference=seed_offload bench.jobs=2 bench.parallel_builds=4 > $B/bench.log 2>&1
echo "bench rc=$? $(( $(date +%s) - T1 )) s" >> $OUT/env.txt
cp $B/bench/bench.json $B/bench/bench.md $OUT/ 2>/dev/null
{ echo "== bench.log"; tr '\r' '\n' < $B/bench.log | grep -v "videos:\|^\s*$" | tail -c 80000
  for f in $SVD_BATCH_CACHE/compiled/artifacts/*.log; do echo "== $f"; tail -3 $f; done; } > $OUT/logs.txt
cat $OUT/env.txt $OUT/bench.md 2>/dev/null; grep "bench: \|error\|Error\|Traceback" $OUT/logs.txt | cut -c1-400 | head -30
