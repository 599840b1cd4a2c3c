#!/bin/bash
# Ran as call 1 of ../h200-2026-12-02d on 4c0e6fc (issue 11; results in that folder), 6.5 min: (1) geglu_ab.py: the
# fused GEGLU compiled as a custom op against the triton_op of 9836be0 and inductor's own GEGLU, at SVD-XT's three widths (is the warm sweep's
# +0.11 s of median denoise the op or the machine?); (2) the warm start on this session's final code (the kernel's
# check at its first eager call, measures beside the export): a prime run, the first warm run after it under py-spy
# (its UNet artifact took 4.9-6.0 s to load against 1.5-2.0 s in later runs), three timed warm runs, and one under
# autotune_probe.py (which kernels a warm process still tunes at run time).
cd "$(dirname "$0")/../.." && source benchmarks/h200-2026-12-01c/common.sh
export PATH=/tmp/site/bin:$PATH; B=/tmp/b; mkdir -p $B; S=$PWD/svd_batch/samples; H=benchmarks/h200-2026-12-02c
timeout 200 python3 $H/geglu_ab.py $OUT/geglu-ab.json > $B/ab.log 2>&1; echo "geglu_ab rc=$?" >> $OUT/env.txt
printf "image,id\n$S/sunset.png,sunset\n" > $B/one.csv
RUN="run.py model=svd_xt model.init=random manifest=$B/one.csv sweep=none cache_dir=/tmp/c"
source $H/timed.sh
timed 330 prime 99 python3 $RUN hardware=h100
timed 110 first_warm_pyspy 4 py-spy record --idle --threads -r 100 -f raw -o $OUT/first-warm-pyspy.txt -- python3 $RUN
for i in 1 2 3; do timed 90 warm$i $i python3 $RUN; done
timed 100 probe 5 python3 benchmarks/h200-2026-12-02b/autotune_probe.py $RUN
grep "^AUTOTUNE" $B/probe.log > $OUT/autotune-probe.jsonl
{ for n in ab prime first_warm_pyspy warm1 warm2 warm3 probe; do echo "== $n.log"
  tr '\r' '\n' < $B/$n.log | grep -v "^videos:\|^\s*$\|^AUTOTUNE"; done; } > $OUT/logs.txt
cat $OUT/env.txt $OUT/times.txt $OUT/geglu-ab.json; wc -l $OUT/autotune-probe.jsonl
grep "rror\|Traceback" $OUT/logs.txt | cut -c1-300 | head
