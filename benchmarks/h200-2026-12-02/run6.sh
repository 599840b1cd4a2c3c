#!/bin/bash
# Device call 3 (an H100 or H200; issue 11): the seed recipe, h100 (group_norms_per_channel now on), and h100 with the
# next levers: every other group norm per channel (the UNet's temporal blocks: denoise; the VAE decoder's: decode),
# the VAE decoder's frame convolutions as matmuls (decode), and all of them; 1 warm-up + 3 timed videos each.
cd "$(dirname "$0")/../.." && source benchmarks/h200-2026-12-01c/common.sh
norms="hardware.temporal_norms_per_channel=true hardware.vae_norms_per_channel=true"
bench_call 585 'bench.seed_recipes=[seed_offload]' \
  "bench.profiles=[h100,\"h100 $norms hardware.vae_convs_as_matmul=true\",\"h100 $norms\",\"h100 hardware.vae_convs_as_matmul=true\"]" \
  bench.reference=seed_offload bench.jobs=3 bench.parallel_builds=6
