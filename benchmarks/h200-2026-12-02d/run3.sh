#!/bin/bash
# Device call 3 (issue 11): static_probe.py: build a graph with the fused GEGLU ahead of time with and without
# inductor's static launch of user-defined kernels, then load it in two fresh processes each; every triton.compile
# logged. Inductor and Triton caches in one folder per variant, as a run's cache_dir.
cd "$(dirname "$0")/../.." && source benchmarks/h200-2026-12-01c/common.sh
P=benchmarks/h200-2026-12-02d/static_probe.py
for s in 1 0; do
  export TORCHINDUCTOR_CACHE_DIR=/tmp/probe$s/inductor; mkdir -p /tmp/probe$s
  for m in build load load; do timeout 120 python3 $P $m $s /tmp/probe$s >> $OUT/probe.log 2>&1; echo "rc=$?" >> $OUT/probe.log; done
done
unset TORCHINDUCTOR_CACHE_DIR; find /tmp/probe1 /tmp/probe0 -name "*geglu*" | head -20 >> $OUT/probe.log
grep -v "^\s*$" $OUT/probe.log | cut -c1-600 | tail -60
