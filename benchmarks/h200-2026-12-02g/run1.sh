#!/bin/bash
# Call 1 (carry [".whl"], a fresh machine, FlashAttention-4 not installed: cuDNN runs the spatial attention): the
# UNet compiled in 3 parts (hardware.compile_unet_parts=3, 95bdf9b) on a GPU. One cold `hardware=h100` run of 8
# videos (one image x 8 seeds, W&B disabled, an empty cache), cut at 200 s: the builders' timed notes (each part's
# imports, inputs, compile, first run, store), when each graph was handed over, and the stage times per video (eager
# before, compiled after). Then a second, warm process on the cache it left: 2 videos, the parts loaded.
cd "$(dirname "$0")/../.." && source benchmarks/h200-2026-12-01c/common.sh
python3 -c "import diffusers, hydra, wandb, imageio_ffmpeg; print('imports ok', diffusers.__version__, wandb.__version__)" >> $OUT/env.txt 2>&1
B=/tmp/b; mkdir -p $B; S=$PWD/svd_batch/samples; printf "image,id\n$S/sunset.png,sunset\n" > $B/one.csv
run() {  # NAME SECONDS SEEDS
  local started=$(date +%s.%N)
  timeout $2 python3 run.py model=svd_xt model.init=random manifest=$B/one.csv sweep=none "sweep.grid.seed=[$3]" \
    hardware=h100 tracking.mode=disabled cache_dir=/tmp/c hydra.run.dir=$B/$1 > $B/$1.log 2>&1
  echo "$1 rc=$? $(python3 -c "import time; print(round(time.time() - $started, 1))") s" >> $OUT/env.txt
  { tr '\r' '\n' < $B/$1.log | grep -v "^videos:\|^\s*$" | cut -c1-300; } > $OUT/$1-log.txt
  cp $B/$1/index.csv $OUT/$1-index.csv 2>/dev/null
}
run cold 200 0,1,2,3,4,5,6,7
for f in /tmp/c/compiled/artifacts/*.log; do echo "== $f"; grep -v "^\s*$" $f | cut -c1-240 | tail -12; done > $OUT/builds.txt
run warm 90 10,11
cat $OUT/env.txt; grep -h " s\]$" $OUT/builds.txt | cut -c1-200; grep -h "compiling\|ready\|loaded\|rror" $OUT/cold-log.txt $OUT/warm-log.txt | cut -c1-220 | head -30
python3 - <<'PY'
import csv, os
for name in ("cold", "warm"):
    path = os.path.join(os.environ["OUT"], f"{name}-index.csv")
    if os.path.exists(path):
        for r in csv.DictReader(open(path)):
            print(name, r["seed"], r["status"], *(f"{k[5:-2]}={float(r[k]):.2f}" for k in r if k.startswith("time_") and r[k]), r["finished_at"])
PY
