#!/bin/bash
# Device call 2 (nvidia-h200; issue 11): h100 as it now stands (call 1's winners on: fused GEGLU, the VAE decoder's
# norms in rows) beside the seed recipe, h100 with inductor's coordinate-descent tuning of its own kernels, and
# h100_fast; 1 warm-up + 3 timed videos each (two steady intervals).
cd "$(dirname "$0")/../.."
python3 -m pip install -q --no-index --no-deps --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 SVD_BATCH_CACHE=/tmp/svdcache
B=/tmp/b; mkdir -p $B; T1=$(date +%s)
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader > $OUT/env.txt
timeout 560 python3 -m svd_batch.bench output_dir=$B/bench 'bench.seed_recipes=[seed_offload]' \
  'bench.profiles=[h100,"h100 +hardware.inductor.coordinate_descent_tuning=true",h100_fast]' \
  bench.reference=seed_offload bench.jobs=3 bench.parallel_builds=6 > $B/bench.log 2>&1
echo "bench rc=$? $(( $(date +%s) - T1 )) s" >> $OUT/env.txt
cp $B/bench/bench.json $B/bench/bench.md $OUT/ 2>/dev/null
{ echo "== bench.log"; tr '\r' '\n' < $B/bench.log | grep -v "videos:\|^\s*$" | tail -c 80000
  for f in $SVD_BATCH_CACHE/compiled/artifacts/*.log; do echo "== $f"; tail -3 $f; done; } > $OUT/logs.txt
cat $OUT/env.txt $OUT/bench.md 2>/dev/null; grep "bench: .* -> \|rror\|Traceback" $OUT/logs.txt | cut -c1-300 | head -30
