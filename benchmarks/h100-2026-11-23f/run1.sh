#!/bin/bash
# Device call 1 (nvidia-h100-x1; issues 14 and 15, and a warm-start baseline for issue 11): one bench run with the
# seed recipe beside h100 (quality measures on, the default), h100 with them off (their cost on the GPU's path), and
# h100 with two chained segments (against 2 x one segment); then a warm `python run.py` of one video on the cache the
# bench left, and where a fresh process spends its imports.
cd "$(dirname "$0")/../.."
python3 -m pip install -q --no-index --no-deps --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 SVD_BATCH_CACHE=/tmp/svdcache
B=/tmp/b; mkdir -p $B; T1=$(date +%s)
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  python3 -c "import torch, cv2, skimage; print('torch', torch.__version__, 'cv2', cv2.__version__, 'skimage', skimage.__version__)"; } > $OUT/env.txt
timeout 450 python3 -m svd_batch.bench output_dir=$B/bench 'bench.seed_recipes=[seed_offload]' \
  'bench.profiles=[h100,"h100 quality.enabled=false","h100 sample.segments=2"]' bench.parallel_builds=4 > $B/bench.log 2>&1
echo "bench rc=$? $(( $(date +%s) - T1 )) s" >> $OUT/env.txt
cp $B/bench/bench.json $B/bench/bench.md $OUT/ 2>/dev/null
S=$PWD/svd_batch/samples; printf "image,id\n$S/sunset.png,sunset\n" > $B/one.csv; T2=$(date +%s)
timeout 100 python3 run.py model=svd_xt model.init=random manifest=$B/one.csv sweep=none hardware=h100 \
  tracking.mode=disabled output_dir=$B/warm > $B/warm.log 2>&1
echo "warm run rc=$? $(( $(date +%s) - T2 )) s (started $(date -d @$T2 +%H:%M:%S))" >> $OUT/env.txt
cp $B/warm/index.csv $OUT/warm-index.csv 2>/dev/null; cp $B/warm/environment.json $OUT/ 2>/dev/null
python3 -X importtime -c "import svd_batch.batch.worker, svd_batch.engine.models, svd_batch.engine.prepare" 2> $B/imports.txt
sort -t'|' -k2 -n -r $B/imports.txt | head -60 > $OUT/imports-top.txt
{ echo "== bench.log"; tr '\r' '\n' < $B/bench.log | grep -v "videos:\|^\s*$" | tail -c 60000
  echo "== warm.log"; tr '\r' '\n' < $B/warm.log | grep -v "videos:\|^\s*$" | tail -c 20000; } > $OUT/logs.txt
cat $OUT/env.txt $OUT/bench.md 2>/dev/null; grep -i "error\|traceback" $OUT/logs.txt | head -20
