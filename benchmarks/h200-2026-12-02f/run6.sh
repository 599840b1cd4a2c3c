#!/bin/bash
# Device call for the next session (carry [".whl"], after ../h200-2026-12-02e/run1a.sh and run1b.sh on the same
# machine; ~7 min; NOT RUN): where a cold sweep's time goes, for the cold levers (issue 11, item 6). The sweep's command
# as the bench runs it (3 images x 4 motion_bucket_id x 2 seeds, hardware=auto, W&B offline, an empty cache), but
# directly: its main process under py-spy (threads, idle included; only the summary comes back), the GPU's utilization
# every 200 ms beside it (are the eager videos during the builds GPU-bound, and what does a builder's first run take
# from them), the builders' timed notes (imports, compiling, first run, store) and the index (stage times per video).
cd "$(dirname "$0")/../.." && source benchmarks/h200-2026-12-01c/common.sh
source benchmarks/h200-2026-12-02f/fa4_site.sh
export PATH=/tmp/site/bin:$PATH; B=/tmp/b; mkdir -p $B; S=$PWD/svd_batch/samples; rm -rf /tmp/coldcache $B/cold
printf "image,id\n$S/sunset.png,sunset\n$S/boat_exif_rotated.jpg,boat_exif_rotated\n$S/logo_rgba.png,logo_rgba\n" > $B/three.csv
nvidia-smi --query-gpu=timestamp,utilization.gpu,memory.used --format=csv,noheader -lms 200 > $OUT/gpu-util.csv &
SMI=$!; started=$(date +%s.%N)
timeout 540 py-spy record --idle --threads -r 50 -f raw -o /tmp/cold-pyspy.txt -- python3 run.py model=svd_xt \
  model.init=random manifest=$B/three.csv sweep=none "sweep.grid.motion_bucket_id=[64,96,127,180]" \
  "sweep.grid.seed=[0,1]" hardware=auto cache_dir=/tmp/coldcache hydra.run.dir=$B/cold > $B/cold.log 2>&1
echo "cold sweep rc=$? $(python3 -c "import time; print(round(time.time() - $started, 1))") s (started $started)" >> $OUT/env.txt
kill $SMI; cp $B/cold/index.csv $OUT/index.csv
python3 benchmarks/h200-2026-12-02b/pyspy_summary.py /tmp/cold-pyspy.txt 50 60 > $OUT/pyspy-summary.txt
for f in /tmp/coldcache/compiled/artifacts/*.log; do echo "== $f"; grep -v "^\s*$" $f | cut -c1-240 | tail -12; done > $OUT/builds.txt
tr '\r' '\n' < $B/cold.log | grep -v "^videos:\|^\s*$" | cut -c1-300 > $OUT/logs.txt
cat $OUT/env.txt; grep -h " s\]$" $OUT/builds.txt | head -20; grep "rror\|Traceback" $OUT/logs.txt | head
