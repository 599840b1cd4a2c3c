#!/bin/bash
# Device call for a later session (issue 11, the cold sweep), NOT RUN yet (~7 min): how long the UNet's artifact takes
# to build with the compile threads svd-batch gives each builder today (the cores over the two builds at a time: 8 on
# this machine) against all the cores each (TORCHINDUCTOR_COMPILE_THREADS=16, which the builders keep when set). Two
# cold runs of one video (hardware=h100, W&B off), each with its own empty cache, the default one first; the builds'
# times come from each run's log ("compiled unet is ready (built in N s)") and the builder logs.
cd "$(dirname "$0")/../.." && source benchmarks/h200-2026-12-01c/common.sh
B=/tmp/b; mkdir -p $B; S=$PWD/svd_batch/samples; printf "image,id\n$S/sunset.png,sunset\n" > $B/one.csv
RUN="run.py model=svd_xt model.init=random manifest=$B/one.csv sweep=none hardware=h100 tracking.mode=disabled"
for threads in default 16; do
  started=$(date +%s)
  if [ $threads = default ]; then env -u TORCHINDUCTOR_COMPILE_THREADS timeout 280 python3 $RUN cache_dir=/tmp/c-$threads hydra.run.dir=$B/$threads > $B/$threads.log 2>&1
  else TORCHINDUCTOR_COMPILE_THREADS=$threads timeout 280 python3 $RUN cache_dir=/tmp/c-$threads hydra.run.dir=$B/$threads > $B/$threads.log 2>&1; fi
  echo "threads=$threads rc=$? $(( $(date +%s) - started )) s: $(grep -o 'compiled [a-z_]* is ready (built in [0-9]* s)' $B/$threads.log | tr '\n' ';')" >> $OUT/times.txt
  for f in /tmp/c-$threads/compiled/artifacts/*.log; do echo "$threads $(tail -1 $f)" >> $OUT/times.txt; done
done
{ for n in default 16; do echo "== $n.log"; tr '\r' '\n' < $B/$n.log | grep -v "^videos:\|^\s*$"; done; } > $OUT/logs.txt
cat $OUT/env.txt $OUT/times.txt; grep "rror\|Traceback" $OUT/logs.txt | cut -c1-300 | head
