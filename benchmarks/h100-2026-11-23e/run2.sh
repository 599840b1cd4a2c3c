#!/bin/bash
# Device call (nvidia-h100-x1, issue 13; the first two runs of run1.sh, what the last device minutes allowed): SVD-XT (random weights) with the process's GPU memory capped, as in the
# issue: 12.7 GiB with hardware=resident (the UNet runs out: the first job should go straight to offload + forward
# chunking, one retry, decode chunk kept), then 8.3 GiB with hardware=auto (building/placing runs out: auto falls
# back to offload by itself) and with hardware=resident (a clear error naming the profile that fits).
cd "$(dirname "$0")/../.."
python3 -m pip install -q --no-index --no-deps --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 SVD_BATCH_CACHE=/tmp/svdcache
B=/tmp/b; mkdir -p $B; S=$PWD/svd_batch/samples; C=benchmarks/h100-2026-11-23e/capped.py
printf "image,id\n$S/sunset.png,sunset\n" > $B/one.csv
ARGS="model=svd_xt model.init=random manifest=$B/one.csv sweep=none tracking.mode=disabled report.grids=false"
for run in "12.7 resident" "8.3 auto"; do
  set -- $run; T0=$(date +%s)
  timeout 95 python3 $C $1 run.py $ARGS hardware=$2 output_dir=$B/cap-$1-$2 > $B/cap-$1-$2.log 2>&1
  echo "cap $1 GiB hardware=$2: rc=$? $(( $(date +%s) - T0 )) s" >> $OUT/summary.txt
  cp $B/cap-$1-$2/index.csv $OUT/cap-$1-$2-index.csv 2>/dev/null
  tr '\r' '\n' < $B/cap-$1-$2.log | grep -v "^videos:\|^\s*$" | cut -c1-400 > $OUT/cap-$1-$2.log
done
cat $OUT/summary.txt; for f in $OUT/*.log; do echo "== $f"; tail -12 $f; done
