#!/bin/bash
# Call 7 (carry [".whl"], after run1a.sh/run1b.sh on a fresh machine): what inductor's tuning of pointwise kernels
# buys. The cold sweep of run4.sh paid 26.7 s for the first runs of its compiled graphs (UNet +13.6 s, VAE decoder
# 8 frames +8.2 s, 1 frame +4.9 s): each kernel's candidate launch configurations timed on the GPU, 2 for a 1-D
# pointwise kernel and 6 for a 2-D one. The bench times `h100` and `h100` with `triton.autotune_pointwise=false`
# (one configuration each, inductor's heuristic) beside the seed recipe: steady s/video, and the warm-up video that
# pays the tuning. Then two warm starts of `h100` (one video each, W&B offline) on the cache the bench left: the
# command's time to its first video with the UNet in 3 parts (3 artifacts to load).
cd "$(dirname "$0")/../.." && source benchmarks/h200-2026-12-01c/common.sh
source benchmarks/h200-2026-12-02f/fa4_site.sh
bench_call 420 'bench.seed_recipes=[seed_offload]' \
  'bench.profiles=[h100,"h100 +hardware.inductor={triton.autotune_pointwise:false}"]' bench.reference=seed_offload
B=/tmp/b; S=$PWD/svd_batch/samples; printf "image,id\n$S/sunset.png,sunset\n" > $B/one.csv
for n in 1 2; do
  started=$(date +%s.%N)
  timeout 90 python3 run.py model=svd_xt model.init=random manifest=$B/one.csv sweep=none "sweep.grid.seed=[$((20 + n))]" \
    hardware=h100 hydra.run.dir=$B/warm$n > $B/warm$n.log 2>&1
  echo "warm start $n rc=$? $(python3 -c "import time; print(round(time.time() - $started, 1))") s (started $started)" >> $OUT/env.txt
  tr '\r' '\n' < $B/warm$n.log | grep -v "^videos:\|^\s*$" | cut -c1-250 > $OUT/warm$n-log.txt
  cp $B/warm$n/index.csv $OUT/warm$n-index.csv 2>/dev/null
done
tail -2 $OUT/env.txt; grep -h "finished_at" -A1 $OUT/warm*-index.csv | cut -c1-10 >/dev/null
python3 - <<'PY'
import csv, os, glob
for path in sorted(glob.glob(os.path.join(os.environ["OUT"], "warm*-index.csv"))):
    for r in csv.DictReader(open(path)):
        print(os.path.basename(path), *(f"{k[5:-2]}={float(r[k]):.2f}" for k in r if k.startswith("time_") and r[k]), r["finished_at"])
PY
