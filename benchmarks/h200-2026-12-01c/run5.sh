#!/bin/bash
# Device call 5 (an H100 or H200; issue 11), run on 2026-12-02 (../h200-2026-12-02/README.md; a record of what ran). The
# seed recipe, h100, h100 with the UNet's spatial group norms' statistics per channel (group_norms_per_channel) and h100
# with the UNet's 2-D convolution weights in channels-last memory (channels_last), side by side; 1 warm-up + 3 timed
# videos each.
cd "$(dirname "$0")/../.." && source benchmarks/h200-2026-12-01c/common.sh
bench_call 540 'bench.seed_recipes=[seed_offload]' 'bench.profiles=[h100,"h100 hardware.group_norms_per_channel=true","h100 hardware.channels_last=true"]' \
  bench.reference=seed_offload bench.jobs=3 bench.parallel_builds=4
