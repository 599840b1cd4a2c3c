#!/bin/bash
# Device call 3 (nvidia-h100-x1): the whole command over 3 images x 8 settings with an empty cache (cold start,
# hardware=auto), then a new process on the cache it left (warm start, hardware=auto). The same command as
# `python -m svd_batch.bench bench.sweep.modes=[cold,warm]` runs; the seed recipe's per-video time is call 2's.
cd "$(dirname "$0")/../.."
python3 -m pip install -q --no-index --no-deps --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
B=/tmp/b; mkdir -p $B; S=$PWD/svd_batch/samples
printf "image,id\n$S/sunset.png,sunset\n$S/boat_exif_rotated.jpg,boat_exif_rotated\n$S/logo_rgba.png,logo_rgba\n" > $B/three.csv
printf "image,id\n$S/sunset.png,sunset\n" > $B/one.csv
T0=$(date +%s.%N)
timeout 440 python3 run.py model=svd_xt model.init=random manifest=$B/three.csv sweep=none \
  'sweep.grid.motion_bucket_id=[64,96,127,180]' 'sweep.grid.seed=[0,1]' hardware=auto cache_dir=/tmp/sweepcache \
  hydra.run.dir=$B/cold > $B/cold.log 2>&1
echo "cold rc=$? started $T0 ended $(date +%s.%N)" > $OUT/times.txt
cp $B/cold/index.csv $OUT/cold-index.csv 2>/dev/null || cp $B/cold/journal.jsonl $OUT/cold-journal.jsonl
T1=$(date +%s.%N)
timeout 60 python3 run.py model=svd_xt model.init=random manifest=$B/one.csv sweep=none 'sweep.grid.seed=[7]' \
  hardware=auto cache_dir=/tmp/sweepcache hydra.run.dir=$B/warm > $B/warm.log 2>&1
echo "warm rc=$? started $T1 ended $(date +%s.%N)" >> $OUT/times.txt
cp $B/warm/journal.jsonl $OUT/warm-journal.jsonl 2>/dev/null
{ echo "== cold.log"; tr '\r' '\n' < $B/cold.log | grep -v "^videos:\|^\s*$"; echo "== warm.log"; tr '\r' '\n' < $B/warm.log | grep -v "^\s*$"
  for f in /tmp/sweepcache/compiled/artifacts/*.log; do echo "== $f"; tail -8 $f; done; } > $OUT/logs.txt
cat $OUT/times.txt; grep -v "videos:" $OUT/logs.txt | cut -c1-230 | tail -40
