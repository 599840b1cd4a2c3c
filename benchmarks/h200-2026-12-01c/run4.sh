#!/bin/bash
# Device call 4 (an H100 or H200; issue 11), NOT RUN: this session's device time was spent. Which of the compiled
# step's normalization kernels run below memory speed (kernel_bandwidth.py, inductor's per-kernel benchmark).
cd "$(dirname "$0")/../.." && source benchmarks/h200-2026-12-01c/common.sh
timeout 540 python3 benchmarks/h200-2026-12-01c/kernel_bandwidth.py $OUT > $OUT/log.txt 2>&1
echo "rc=$?" >> $OUT/env.txt; cat $OUT/env.txt; grep -v Warning $OUT/log.txt | tail -60
