#!/bin/bash
# Device call 4 (an H100 or H200; issue 11), NOT RUN: this session's device time was spent. The seed recipe beside
# h100 as it now stands (fused GEGLU and the VAE decoder's norms in rows on, fewer main-thread steps between videos),
# h100 with each new lever alone (self-attention's q/k/v as one GEMM; the feed-forward's LayerNorm inside the GEGLU
# kernel), h100_fast; every build finishes before any timing; 1 warm-up + 3 timed videos each (two steady intervals).
cd "$(dirname "$0")/../.."
python3 -m pip install -q --no-index --no-deps --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 SVD_BATCH_CACHE=/tmp/svdcache
B=/tmp/b; mkdir -p $B; T1=$(date +%s)
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader > $OUT/env.txt
timeout 570 python3 -m svd_batch.bench output_dir=$B/bench 'bench.seed_recipes=[seed_offload]' \
  'bench.profiles=[h100,"h100 hardware.fused_qkv=true","h100 hardware.fused_layer_norm=true",h100_fast]' \
  bench.reference=seed_offload bench.jobs=3 bench.parallel_builds=6 > $B/bench.log 2>&1
echo "bench rc=$? $(( $(date +%s) - T1 )) s" >> $OUT/env.txt
cp $B/bench/bench.json $B/bench/bench.md $OUT/ 2>/dev/null
{ echo "== bench.log"; tr '\r' '\n' < $B/bench.log | grep -v "videos:\|^\s*$" | tail -c 80000
  for f in $SVD_BATCH_CACHE/compiled/artifacts/*.log; do echo "== $f"; tail -3 $f; done; } > $OUT/logs.txt
cat $OUT/env.txt $OUT/bench.md 2>/dev/null; grep "bench: .* -> \|rror\|Traceback" $OUT/logs.txt | cut -c1-300 | head -30
