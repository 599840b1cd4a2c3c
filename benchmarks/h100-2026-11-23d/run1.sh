#!/bin/bash
# Device call 1 (nvidia-h100-x1): the bench, seed_offload beside h100 and h100_fast in one process; the compiled graphs
# of both profiles are built in background processes while the seed recipe is timed.
cd "$(dirname "$0")/../.."
T0=$(date +%s)
python3 -m pip install -q --no-index --no-deps --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 SVD_BATCH_CACHE=/tmp/svdcache
B=/tmp/b; mkdir -p $B
{ echo "install $(( $(date +%s) - T0 )) s"; nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  python3 -c "import torch, triton, diffusers; print('torch', torch.__version__, 'triton', triton.__version__, 'diffusers', diffusers.__version__)"; } > $OUT/env.txt
T1=$(date +%s)
timeout ${BENCH_LIMIT:-540} python3 -m svd_batch.bench output_dir=$B/bench 'bench.seed_recipes=[seed_offload]' \
  "bench.profiles=[${PROFILES:-h100,h100_fast}]" bench.parallel_builds=5 > $B/bench.log 2>&1
echo "bench rc=$? $(( $(date +%s) - T1 )) s" >> $OUT/env.txt
cp $B/bench/bench.json $B/bench/bench.md $OUT/ 2>/dev/null
{ echo "== bench.log"; tr '\r' '\n' < $B/bench.log | grep -v "videos:\|^\s*$" | tail -c 100000
  for f in /tmp/svdcache/compiled/artifacts/*.log; do echo "== $f"; tail -8 $f; done; } > $OUT/logs.txt
cat $OUT/env.txt $OUT/bench.md 2>/dev/null; grep -i "error\|traceback" $OUT/logs.txt | head -20
