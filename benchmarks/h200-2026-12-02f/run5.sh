#!/bin/bash
# Device call for the next session (carry [".whl"]; NOT RUN: too little device time was left to start a machine):
# whether the builds that now start before the first video (Compiler.build_ahead, a59d00e) have the signatures the
# video's calls have on a GPU (fp16, CUDA; the CPU test checks float32 on the CPU): one cold `hardware=h100` run of
# one video, cut at 70 s, its log's "compiling ..." lines (a call whose signature was not built ahead would start a
# second UNet or decoder build) and the builder logs' timed notes so far. FlashAttention-4 is not installed (cuDNN runs).
cd "$(dirname "$0")/../.." && source benchmarks/h200-2026-12-01c/common.sh
B=/tmp/b; mkdir -p $B; S=$PWD/svd_batch/samples; printf "image,id\n$S/sunset.png,sunset\n" > $B/one.csv
timeout 70 python3 run.py model=svd_xt model.init=random manifest=$B/one.csv sweep=none hardware=h100 \
  tracking.mode=disabled cache_dir=/tmp/c hydra.run.dir=$B/run > $B/run.log 2>&1; echo "rc=$?" >> $OUT/env.txt
{ tr '\r' '\n' < $B/run.log | grep -v "^videos:\|^\s*$" | cut -c1-260; for f in /tmp/c/compiled/artifacts/*.log; do
  echo "== $f"; cat $f | cut -c1-200; done; } > $OUT/log.txt
cat $OUT/env.txt; grep -h "compiling\|compiled\|imports done\|Error\|rror" $OUT/log.txt | cut -c1-220 | head -20
