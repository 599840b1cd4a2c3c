#!/bin/bash
# Device call 5 (issue 11): static_probe.py with the fused GEGLU at all three of SVD-XT's widths in one graph, built
# as the builder builds (8 compile workers) with the static launch of user-defined kernels, loaded twice.
cd "$(dirname "$0")/../.." && source benchmarks/h200-2026-12-01c/common.sh
P=benchmarks/h200-2026-12-02d/static_probe.py
export TORCHINDUCTOR_CACHE_DIR=/tmp/probe3w/inductor; mkdir -p /tmp/probe3w
TORCHINDUCTOR_COMPILE_THREADS=8 timeout 100 python3 $P build 1 /tmp/probe3w 320,640,1280 >> $OUT/probe.log 2>&1; echo "rc=$?" >> $OUT/probe.log
for m in load load; do timeout 60 python3 $P $m 1 /tmp/probe3w 320,640,1280 >> $OUT/probe.log 2>&1; echo "rc=$?" >> $OUT/probe.log; done
grep -v "^\s*$" $OUT/probe.log | cut -c1-800 | tail -30
