#!/bin/bash
# Device call 4 (an H100 or H200; issue 11), run on 2026-12-02 (../h200-2026-12-02/README.md; a record of what ran).
# Which of the compiled step's normalization kernels run below memory speed (kernel_bandwidth.py, inductor's per-kernel
# benchmark).
cd "$(dirname "$0")/../.." && source benchmarks/h200-2026-12-01c/common.sh
timeout 540 python3 benchmarks/h200-2026-12-01c/kernel_bandwidth.py $OUT > $OUT/log.txt 2>&1
echo "rc=$?" >> $OUT/env.txt; cat $OUT/env.txt; grep -v Warning $OUT/log.txt | tail -60
