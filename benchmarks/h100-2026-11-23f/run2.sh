#!/bin/bash
# Device call 2 (nvidia-h100-x1; issues 14, 15 and 11): after call 1, the CLIP measure preprocesses on the GPU, chained
# segments match colours through 8-bit Lab lookup tables, and compiled graphs load while the model loads. The same
# bench as call 1 (seed recipe, h100 with quality measures on and off, h100 with two segments), then two warm
# one-video runs of `python run.py` on the cache the bench left.
cd "$(dirname "$0")/../.."
python3 -m pip install -q --no-index --no-deps --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 SVD_BATCH_CACHE=/tmp/svdcache
B=/tmp/b; mkdir -p $B; T1=$(date +%s)
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  python3 -c "import torch, cv2, skimage; print('torch', torch.__version__, 'cv2', cv2.__version__, 'skimage', skimage.__version__)"; } > $OUT/env.txt
timeout 440 python3 -m svd_batch.bench output_dir=$B/bench 'bench.seed_recipes=[seed_offload]' \
  'bench.profiles=[h100,"h100 quality.enabled=false","h100 sample.segments=2"]' bench.parallel_builds=4 > $B/bench.log 2>&1
echo "bench rc=$? $(( $(date +%s) - T1 )) s" >> $OUT/env.txt
cp $B/bench/bench.json $B/bench/bench.md $OUT/ 2>/dev/null
S=$PWD/svd_batch/samples; printf "image,id\n$S/sunset.png,sunset\n" > $B/one.csv
for n in 1 2; do T2=$(date +%s)
  timeout 60 python3 run.py model=svd_xt model.init=random manifest=$B/one.csv sweep=none hardware=h100 \
    tracking.mode=disabled output_dir=$B/warm$n > $B/warm$n.log 2>&1
  echo "warm run $n rc=$? $(( $(date +%s) - T2 )) s (started $(date -d @$T2 +%H:%M:%S))" >> $OUT/env.txt
  cp $B/warm$n/index.csv $OUT/warm$n-index.csv 2>/dev/null
done
{ echo "== bench.log"; tr '\r' '\n' < $B/bench.log | grep -v "videos:\|^\s*$" | tail -c 60000
  for n in 1 2; do echo "== warm$n.log"; tr '\r' '\n' < $B/warm$n.log | grep -v "videos:\|^\s*$" | tail -c 10000; done; } > $OUT/logs.txt
cat $OUT/env.txt $OUT/bench.md 2>/dev/null; grep -i "error\|traceback" $OUT/logs.txt | head -20
