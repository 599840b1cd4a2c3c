#!/bin/bash
# Device call 1 (issue 11, the warm start): W&B in its own process (built after the last session's final call), the
# fused GEGLU as a triton_op (compiled into the artifact), a job's measures beside its export. Preflight: the
# triton_op in a compiled function (on failure the custom-op kernels.py is put back and the rest still runs). A prime
# run fills the cache (hardware=h100, W&B offline, waits for its builds); three warm runs of one video as a sweep
# starts them (hardware=auto), each timed from the command's start to its first video's index row and to its video
# file; one more under py-spy; one under autotune_probe.py (which kernels a warm process still tunes at run time).
cd "$(dirname "$0")/../.." && source benchmarks/h200-2026-12-01c/common.sh
export PATH=/tmp/site/bin:$PATH; B=/tmp/b; mkdir -p $B; S=$PWD/svd_batch/samples; H=benchmarks/h200-2026-12-02c
printf "image,id\n$S/sunset.png,sunset\n" > $B/one.csv
python3 -c "import filelock, torch, triton; print('filelock', filelock.__version__, 'torch', torch.__version__, 'triton', triton.__version__)" >> $OUT/env.txt
if ! timeout 120 python3 $H/geglu_preflight.py >> $OUT/env.txt 2>$B/preflight.log; then
  echo "preflight FAILED: custom-op GEGLU put back" >> $OUT/env.txt; tail -30 $B/preflight.log >> $OUT/env.txt
  cp $H/kernels_custom_op.py svd_batch/engine/kernels.py  # e01d3a5's kernels.py; removed after the call, unused
fi
RUN="run.py model=svd_xt model.init=random manifest=$B/one.csv sweep=none cache_dir=/tmp/c"
source $H/timed.sh  # the same helper inline when it ran
timed 330 prime 99 python3 $RUN hardware=h100
for i in 1 2 3; do timed 90 warm$i $i python3 $RUN; done
timed 110 warm_pyspy 4 py-spy record --idle --threads -r 100 -f raw -o $OUT/warm-pyspy.txt -- python3 $RUN
timed 100 probe 5 python3 benchmarks/h200-2026-12-02b/autotune_probe.py $RUN
grep "^AUTOTUNE" $B/probe.log > $OUT/autotune-probe.jsonl
{ for n in prime warm1 warm2 warm3 warm_pyspy probe; do echo "== $n.log"
  tr '\r' '\n' < $B/$n.log | grep -v "^videos:\|^\s*$\|^AUTOTUNE"; done
  for f in /tmp/c/compiled/artifacts/*.log; do echo "== $f"; tail -4 $f; done; } > $OUT/logs.txt
cat $OUT/env.txt $OUT/times.txt; wc -l $OUT/autotune-probe.jsonl; grep "rror\|Traceback" $OUT/logs.txt | cut -c1-300 | head
