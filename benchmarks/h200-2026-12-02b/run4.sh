#!/bin/bash
# Device call for the next session (issue 11), NOT RUN yet: which kernels a warm process still autotunes at the first
# UNet call, and why their tuned settings are not found. A prime run fills the cache (W&B offline, as the warm runs:
# its bytecode is cached too); one warm run as a sweep starts it (timed, as in run3.sh); one under autotune_probe.py
# (each runtime autotuning logged: AUTOTUNE lines of the log). ~5 min.
cd "$(dirname "$0")/../.." && source benchmarks/h200-2026-12-01c/common.sh
B=/tmp/b; mkdir -p $B; S=$PWD/svd_batch/samples; printf "image,id\n$S/sunset.png,sunset\n" > $B/one.csv
RUN="run.py model=svd_xt model.init=random manifest=$B/one.csv sweep=none cache_dir=/tmp/c"
timeout 320 python3 $RUN hardware=h100 'sweep.grid.seed=[99]' hydra.run.dir=$B/prime > $B/prime.log 2>&1
echo "prime rc=$?" >> $OUT/env.txt
T0=$(date +%s.%N)
timeout 90 python3 $RUN 'sweep.grid.seed=[1]' hydra.run.dir=$B/warm > $B/warm.log 2>&1
python3 -c "import sys, pandas as pd; t = pd.Timestamp(pd.read_csv('$B/warm/index.csv')['finished_at'][0]).timestamp(); print('warm: first video', round(t - float(sys.argv[1]), 1), 's')" $T0 >> $OUT/env.txt
timeout 100 python3 benchmarks/h200-2026-12-02b/autotune_probe.py $RUN 'sweep.grid.seed=[2]' hydra.run.dir=$B/probe > $B/probe.log 2>&1
echo "probe rc=$?" >> $OUT/env.txt
grep "^AUTOTUNE" $B/probe.log > $OUT/autotune-probe.jsonl
{ for n in prime warm probe; do echo "== $n.log"; tr '\r' '\n' < $B/$n.log | grep -v "^videos:\|^\s*$\|^AUTOTUNE"; done; } > $OUT/logs.txt
cat $OUT/env.txt; wc -l $OUT/autotune-probe.jsonl; head -c 3000 $OUT/autotune-probe.jsonl
