#!/bin/bash
# Device call 5 (an H100 or H200; issue 11), NOT RUN: this session's device time was spent. The seed recipe, h100,
# h100 with the UNet's spatial group norms' statistics per channel (group_norms_per_channel) and h100 with the UNet's
# 2-D convolution weights in channels-last memory (channels_last), side by side; 1 warm-up + 3 timed videos each.
cd "$(dirname "$0")/../.." && source benchmarks/h200-2026-12-01c/common.sh
bench_call 540 'bench.seed_recipes=[seed_offload]' 'bench.profiles=[h100,"h100 hardware.group_norms_per_channel=true","h100 hardware.channels_last=true"]' \
  bench.reference=seed_offload bench.jobs=3 bench.parallel_builds=4
