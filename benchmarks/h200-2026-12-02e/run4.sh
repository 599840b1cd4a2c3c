#!/bin/bash
# Call 4 (carry [".whl"], a fresh machine: no FlashAttention-4, so the `h100` profile's spatial attention falls back to
# cuDNN, keyed as such): what Python's teardown costs a finished full-size run. A prime run (hardware=h100, waits for
# its builds), then a warm `python run.py` (ends with svd_batch.quick_exit.exit_now) and a warm run of the same
# command with exit_now made a no-op (the interpreter's normal teardown), twice each, alternating.
# times.txt: each command's wall time and first video; after-summary.txt: seconds from the summary's log line to the
# command's end.
cd "$(dirname "$0")/../.." && source benchmarks/h200-2026-12-01c/common.sh
B=/tmp/b; mkdir -p $B; S=$PWD/svd_batch/samples
printf "image,id\n$S/sunset.png,sunset\n" > $B/one.csv
ARGS="model=svd_xt model.init=random manifest=$B/one.csv sweep=none cache_dir=/tmp/c"
source benchmarks/h200-2026-12-02c/timed.sh
T="bash benchmarks/h200-2026-12-02e/stamped.sh"  # the command, then the time it ended in $B/NAME.end
# run.py as `python run.py` runs it, with exit_now made a no-op: the interpreter's own teardown follows
NOQUICK="import runpy, sys, svd_batch.quick_exit as q; q.exit_now = lambda code=0: None; sys.argv = ['run.py'] + sys.argv[1:]; runpy.run_path('run.py', run_name='__main__')"
timed 230 prime 99 python3 run.py $ARGS hardware=h100
for i in 1 2; do
  timed 60 quick$i $i $T $B/quick$i.end python3 run.py $ARGS
  timed 60 teardown$i $((i + 2)) $T $B/teardown$i.end python3 -c "$NOQUICK" $ARGS
done
for n in quick1 teardown1 quick2 teardown2; do python3 - $B/$n.log $B/$n.end $n >> $OUT/after-summary.txt <<'PY'
import re, sys, datetime
log, end, name = open(sys.argv[1]).read(), float(open(sys.argv[2]).read()), sys.argv[3]
m = re.findall(r"\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+)\]\[[^\]]+\]\[INFO\] - summary", log)
t = datetime.datetime.strptime(m[-1], "%Y-%m-%d %H:%M:%S,%f").replace(tzinfo=datetime.timezone.utc).timestamp() if m else end
print(f"{name}: {end - t:.2f} s from the summary to the command's end")
PY
done
{ for n in prime quick1 teardown1 quick2 teardown2; do echo "== $n.log"; tr '\r' '\n' < $B/$n.log | grep -v "^videos:\|^\s*$"; done; } > $OUT/logs.txt
cat $OUT/env.txt $OUT/times.txt $OUT/after-summary.txt; grep "rror\|Traceback\|attention" $OUT/logs.txt | cut -c1-250 | head
