#!/bin/bash
# Call 3 (carry [".whl"], right after run2.sh on the same warm machine; ~6 min): the warm start on this session's code
# (the fused GEGLU statically launchable, no second reduction configuration at load: `inductor_options`; the plan's
# artifacts loaded on a thread of their own from before the first job: `Compiler.prefetch`; FlashAttention-4 in the
# `h100` profile when run1b.sh found it faster, loaded on a thread of its own: fa4_env.sh). A prime run
# (hardware=h100, waits for its builds; its builders log why inductor launches a kernel through Triton's launcher);
# the first warm process after it under py-spy and compile_probe.py (which Triton kernels it still compiles, and why
# inductor did not launch them statically); three timed warm runs; one under autotune_probe.py (what a warm process
# still autotunes at its first call). Written as `../h200-2026-12-02d/run6.sh`, not run there.
cd "$(dirname "$0")/../.." && source benchmarks/h200-2026-12-01c/common.sh
source benchmarks/h200-2026-12-02e/fa4_env.sh; use_fa4
export PATH=/tmp/site/bin:$PATH; B=/tmp/b; mkdir -p $B; S=$PWD/svd_batch/samples; H=benchmarks/h200-2026-12-02e
printf "image,id\n$S/sunset.png,sunset\n" > $B/one.csv
RUN="run.py model=svd_xt model.init=random manifest=$B/one.csv sweep=none cache_dir=/tmp/c"
source benchmarks/h200-2026-12-02c/timed.sh
# the builders log inductor's reasons for not launching a kernel statically (and their Triton cache folder)
export TORCH_LOGS=+torch._inductor.runtime.triton_heuristics
timed 330 prime 99 python3 $RUN hardware=h100
unset TORCH_LOGS
for f in /tmp/c/compiled/artifacts/*.log; do echo "== $f"; grep -h "Bypassing\|Triton cache dir" $f | sort | uniq -c | head -20; done > $OUT/builders-static.txt
timed 120 first_warm_probe 4 py-spy record --idle --threads -r 100 -f raw -o $OUT/first-warm-pyspy.txt -- \
  python3 $H/compile_probe.py $RUN
for i in 1 2 3; do timed 90 warm$i $i python3 $RUN; done
timed 100 autotune 5 python3 benchmarks/h200-2026-12-02b/autotune_probe.py $RUN
grep -h "^TRITON_COMPILE\|^STATIC_LAUNCH" $B/first_warm_probe.log > $OUT/first-warm-compiles.txt
grep -h "^AUTOTUNE" $B/autotune.log > $OUT/autotune-probe.jsonl
{ for n in prime first_warm_probe warm1 warm2 warm3 autotune; do echo "== $n.log"
  tr '\r' '\n' < $B/$n.log | grep -v "^videos:\|^\s*$\|^AUTOTUNE\|^TRITON_COMPILE\|^STATIC_LAUNCH"; done; } > $OUT/logs.txt
cat $OUT/env.txt $OUT/times.txt $OUT/builders-static.txt; wc -l $OUT/first-warm-compiles.txt $OUT/autotune-probe.jsonl
python3 benchmarks/h200-2026-12-02d/pyspy_within.py $OUT/first-warm-pyspy.txt "Compiler.load (" 100 30 | head -40
grep "rror\|Traceback" $OUT/logs.txt | cut -c1-300 | head
