#!/bin/bash
# Device call 2 (nvidia-h100-x1): the bench (seed_offload vs h100, h100_fast, resident in one process; the compiled
# graphs of both compiled profiles built in parallel in the background), then a warm start: a new `python run.py`
# on the cache the bench left, timed from the command's start; then the per-kernel profile of one compiled step.
cd "$(dirname "$0")/../.."
T0=$(date +%s)
python3 -m pip install -q --no-index --no-deps --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 SVD_BATCH_CACHE=/tmp/svdcache
B=/tmp/b; mkdir -p $B
echo "install $(( $(date +%s) - T0 )) s" > $OUT/env.txt
printf "image,id\n$PWD/svd_batch/samples/sunset.png,sunset\n" > $B/one.csv
T1=$(date +%s)
timeout ${BENCH_LIMIT:-400} python3 -m svd_batch.bench output_dir=$B/bench 'bench.seed_recipes=[seed_offload]' \
  "bench.profiles=[${PROFILES:-h100,h100_fast,resident}]" bench.parallel_builds=5 > $B/bench.log 2>&1
echo "bench rc=$? $(( $(date +%s) - T1 )) s" >> $OUT/env.txt
cp $B/bench/bench.json $B/bench/bench.md $OUT/ 2>/dev/null
pkill -f svd_batch.engine.compiled  # a build the cut-short bench left running
T2=$(date +%s.%N)
timeout 75 python3 run.py model=svd_xt model.init=random hardware=h100 manifest=$B/one.csv sweep=none \
  'sweep.grid.seed=[7,8]' output_dir=$B/warm > $B/warm.log 2>&1
echo "warm run.py rc=$? started $T2 ended $(date +%s.%N)" >> $OUT/env.txt
cp $B/warm/journal.jsonl $OUT/warm-journal.jsonl 2>/dev/null
timeout 50 python3 benchmarks/h100-2026-11-23c/profile_step.py /tmp/svdcache $OUT > $B/profile.log 2>&1
{ echo "== bench.log"; grep -v "videos:" $B/bench.log | tail -c 150000; echo "== warm.log"; cat $B/warm.log
  echo "== profile.log"; cat $B/profile.log
  for f in /tmp/svdcache/compiled/artifacts/*.log; do echo "== $f"; tail -25 $f; done; } > $OUT/logs.txt
ls -la /tmp/svdcache/compiled/artifacts/ >> $OUT/env.txt
cat $OUT/env.txt $OUT/bench.md; tail -30 $B/profile.log
