#!/bin/bash
# Device call 4 (issue 11): static_probe.py again, built as svd-batch's builder process builds (a compile pool of 8
# worker processes: TORCHINDUCTOR_COMPILE_THREADS=8) with the static launch of user-defined kernels; loaded twice.
cd "$(dirname "$0")/../.." && source benchmarks/h200-2026-12-01c/common.sh
P=benchmarks/h200-2026-12-02d/static_probe.py
export TORCHINDUCTOR_CACHE_DIR=/tmp/probe8/inductor; mkdir -p /tmp/probe8
TORCHINDUCTOR_COMPILE_THREADS=8 timeout 120 python3 $P build 1 /tmp/probe8 >> $OUT/probe.log 2>&1; echo "rc=$?" >> $OUT/probe.log
for m in load load; do timeout 100 python3 $P $m 1 /tmp/probe8 >> $OUT/probe.log 2>&1; echo "rc=$?" >> $OUT/probe.log; done
grep -v "^\s*$" $OUT/probe.log | cut -c1-600 | tail -30
