#!/bin/bash
# Device call for the next session (an H100 or H200; issue 11), NOT RUN yet: each Triton kernel's achieved memory
# bandwidth in one compiled UNet step and one 8-frame VAE decode of h100 (kernel_bandwidth.py, ~4 min), and the source
# of the 15 furthest from memory speed. On an H100 SXM, prefix PEAK_GBS=3350.
cd "$(dirname "$0")/../.." && source benchmarks/h200-2026-12-01c/common.sh
timeout 540 python3 benchmarks/h200-2026-12-02/kernel_bandwidth.py $OUT > $OUT/log.txt 2>&1
echo "rc=$?" >> $OUT/env.txt; cat $OUT/env.txt; grep -v Warning $OUT/log.txt | tail -70
