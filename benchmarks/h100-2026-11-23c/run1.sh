#!/bin/bash
# Device call 1 (nvidia-h100-x1): the bench (the seed recipe vs svd-batch's profiles, in one process, every profile's
# compiled graphs built in parallel in the background), then a warm start of `python run.py` on the cache the bench
# left, then the per-kernel profile of one compiled UNet step. Wheels from .whl/ (README of the device tool).
cd "$(dirname "$0")/../.."
python3 -m pip install -q --no-index --no-deps --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 SVD_BATCH_CACHE=/tmp/svdcache
B=/tmp/b; mkdir -p $B
nvidia-smi --query-gpu=name,memory.total,memory.free,driver_version --format=csv > $OUT/env.txt
python3 -c "import torch, triton; print(torch.__version__, triton.__version__, torch.backends.cudnn.version())" >> $OUT/env.txt 2>&1
T0=$(date +%s)
timeout ${BENCH_LIMIT:-430} python3 -m svd_batch.bench output_dir=$B/bench 'bench.seed_recipes=[seed_offload]' \
  "bench.profiles=[${PROFILES:-h100,h100_fast,resident}]" bench.parallel_builds=8 > $B/bench.log 2>&1
echo "bench rc=$? $(( $(date +%s) - T0 )) s" >> $OUT/env.txt
cp $B/bench/bench.json $B/bench/bench.md $OUT/ 2>/dev/null
T1=$(date +%s)
timeout 90 python3 run.py model=svd_xt model.init=random hardware=h100 sweep=none 'sweep.grid.seed=[0,1]' \
  output_dir=$B/warm tracking.mode=offline > $B/warm.log 2>&1
echo "warm run.py rc=$? $(( $(date +%s) - T1 )) s (start $T1)" >> $OUT/env.txt
cp $B/warm/index.csv $OUT/warm-index.csv 2>/dev/null
timeout 60 python3 benchmarks/h100-2026-11-23c/profile_step.py /tmp/svdcache $OUT >> $B/profile.log 2>&1
# logs: the bench's, the warm run's, the profile's, and the tail of every builder's
{ echo "== bench.log"; tail -c 200000 $B/bench.log; echo "== warm.log"; cat $B/warm.log; echo "== profile.log"; cat $B/profile.log
  for f in /tmp/svdcache/compiled/artifacts/*.log; do echo "== $f"; tail -40 $f; done; } > $OUT/logs.txt
ls -la /tmp/svdcache/compiled/artifacts/ >> $OUT/env.txt
cat $OUT/bench.md; tail -30 $B/profile.log
