#!/bin/bash
# Device call 1 (issue 11, the warm start): where a new process with a warm cache spends its time before its first
# video. A prime run (one video, hardware=h100, waits for its background builds) fills the cache; then four warm
# runs of one video with hardware=auto and a new seed each: plain (default tracking: W&B offline), under py-spy
# (every thread's stacks, idle ones included, 100 Hz), under `python -X importtime`, and with tracking disabled.
# Each one's first video is timed as the bench's sweep times it: the index's finished_at minus the command's start.
cd "$(dirname "$0")/../.." && source benchmarks/h200-2026-12-01c/common.sh
export PATH=/tmp/site/bin:$PATH; B=/tmp/b; mkdir -p $B; S=$PWD/svd_batch/samples; printf "image,id\n$S/sunset.png,sunset\n" > $B/one.csv
python3 -c "import wandb, torch; print('wandb', wandb.__version__, 'torch', torch.__version__)" >> $OUT/env.txt 2>&1
for m in torch diffusers transformers wandb; do
  python3 -c "import time; t=time.perf_counter(); import $m; print('import $m', round(time.perf_counter()-t, 2), 's')" >> $OUT/env.txt 2>&1
done
python3 -c "import time; t=time.perf_counter(); import torch; a=time.perf_counter(); torch.cuda.init(); torch.zeros(1, device='cuda'); print('cuda init', round(time.perf_counter()-a, 2), 's')" >> $OUT/env.txt 2>&1
RUN="run.py model=svd_xt model.init=random manifest=$B/one.csv sweep=none cache_dir=/tmp/c"
timed() {  # LIMIT NAME SEED COMMAND...: runs it, then prints the first video's time from the command's start
  local limit=$1 name=$2 seed=$3; shift 3; local t0=$(date +%s.%N)
  timeout $limit "$@" "sweep.grid.seed=[$seed]" hydra.run.dir=$B/$name > $B/$name.log 2>&1; local rc=$?
  python3 - "$name" "$t0" "$rc" "$(date +%s.%N)" $B/$name/index.csv >> $OUT/times.txt <<'PY'
import sys, pandas as pd
name, t0, rc, t1, index = sys.argv[1], float(sys.argv[2]), sys.argv[3], float(sys.argv[4]), sys.argv[5]
try:
    first = pd.to_datetime(pd.read_csv(index)["finished_at"]).map(lambda t: t.timestamp()).min() - t0
except Exception as exc:
    first = f"no index ({exc})"
print(f"{name}: rc={rc} command {t1 - t0:.1f} s, first video {first if isinstance(first, str) else round(first, 1)} s")
PY
}
timed 320 prime 99 python3 $RUN hardware=h100 tracking.mode=disabled
timed 90 warm 1 python3 $RUN
timed 110 warm_pyspy 2 py-spy record --idle --threads -r 100 -f raw -o $OUT/warm-pyspy.txt -- python3 $RUN
timed 100 warm_importtime 3 python3 -X importtime $RUN
timed 90 warm_notracking 4 python3 $RUN tracking.mode=disabled
grep "import time:" $B/warm_importtime.log | sort -t'|' -k2 -n -r | head -150 > $OUT/warm-imports-cumulative.txt
grep "import time:" $B/warm_importtime.log | awk -F'|' '{split($1, a, ":"); print a[2] + 0, $0}' | sort -n -r | head -80 > $OUT/warm-imports-self.txt
{ for n in prime warm warm_pyspy warm_importtime warm_notracking; do echo "== $n.log"
  tr '\r' '\n' < $B/$n.log | grep -v "^videos:\|^\s*$\|^import time:"; done
  for f in /tmp/c/compiled/artifacts/*.log; do echo "== $f"; tail -4 $f; done; } > $OUT/logs.txt
cat $OUT/env.txt $OUT/times.txt; grep "rror\|Traceback" $OUT/logs.txt | cut -c1-300 | head
