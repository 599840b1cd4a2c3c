#!/bin/bash
# Device call for the next session (an H100 or H200; issue 11), NOT RUN yet: the seed recipe, h100, and h100 with the
# temporal blocks' frame convolutions as Conv3d in channels-last-3d memory (the UNet's: denoise column; the VAE
# decoder's: decode column), after call 5's eager timing (frame_conv.py); 1 warm-up + 3 timed videos each (~6 min).
cd "$(dirname "$0")/../.." && source benchmarks/h200-2026-12-01c/common.sh
bench_call 540 'bench.seed_recipes=[seed_offload]' \
  'bench.profiles=[h100,"h100 hardware.temporal_convs_3d=true hardware.vae_convs_3d=true"]' \
  bench.reference=seed_offload bench.jobs=3 bench.parallel_builds=6
