#!/bin/bash
# Device call 3 (nvidia-h100-x1): one lever measured alone, Inductor's coordinate-descent tuning of its generated
# kernels (GroupNorm+SiLU, LayerNorm, residual epilogues), on both compiled profiles, seed_offload in the same run.
cd "$(dirname "$0")/../.."
python3 -m pip install -q --no-index --no-deps --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 SVD_BATCH_CACHE=/tmp/svdcache
B=/tmp/b; mkdir -p $B; T1=$(date +%s)
CDT=+hardware.inductor.coordinate_descent_tuning=true
timeout 560 python3 -m svd_batch.bench output_dir=$B/bench 'bench.seed_recipes=[seed_offload]' \
  "bench.profiles=[\"h100 $CDT\",\"h100_fast $CDT\"]" bench.parallel_builds=5 > $B/bench.log 2>&1
echo "bench rc=$? $(( $(date +%s) - T1 )) s" > $OUT/env.txt
cp $B/bench/bench.json $B/bench/bench.md $OUT/ 2>/dev/null
{ echo "== bench.log"; tr '\r' '\n' < $B/bench.log | grep -v "videos:\|^\s*$" | tail -c 100000
  for f in /tmp/svdcache/compiled/artifacts/*.log; do echo "== $f"; tail -8 $f; done; } > $OUT/logs.txt
cat $OUT/env.txt $OUT/bench.md 2>/dev/null; grep -i "error\|traceback" $OUT/logs.txt | head -20
