#!/bin/bash
# Device call 4 (an H100 or H200; issue 11): the seed recipe, h100 and h100_fast as they are after call 3 (every group
# norm per channel on, the VAE's frame convolutions as matmuls off); 1 warm-up + 3 timed videos each.
cd "$(dirname "$0")/../.." && source benchmarks/h200-2026-12-01c/common.sh
bench_call 420 'bench.seed_recipes=[seed_offload]' 'bench.profiles=[h100,h100_fast]' \
  bench.reference=seed_offload bench.jobs=3 bench.parallel_builds=6
