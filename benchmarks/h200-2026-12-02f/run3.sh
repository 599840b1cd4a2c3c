#!/bin/bash
# Call 3 (carry [".whl"], right after run2.sh on the same machine): the two levers built and never measured on a GPU,
# each alone beside `h100` and the seed recipe in one bench run: the VAE decoder's frame convolutions as Conv3d in
# channels-last-3d memory (decode column) and the UNet's likewise (denoise column); 1 warm-up + 2 timed videos each.
# The bench's cache is the sweep's (/tmp/sweepcache, which run2.sh's cold sweep filled): `h100` loads its graphs from
# there, the two levers' new graphs are built into it (two builders at a time, 8 compile threads each), so run4.sh's
# warm sweep finds them whichever levers.sh keeps.
cd "$(dirname "$0")/../.." && source benchmarks/h200-2026-12-01c/common.sh
source benchmarks/h200-2026-12-02f/fa4_site.sh
[ -d /tmp/sweepcache/compiled/artifacts ] || { echo "no cache from run2.sh: a fresh machine"; exit 3; }
export SVD_BATCH_CACHE=/tmp/sweepcache
bench_call 585 'bench.seed_recipes=[seed_offload]' \
  'bench.profiles=[h100,"h100 hardware.vae_convs_3d=true","h100 hardware.temporal_convs_3d=true"]' \
  bench.reference=seed_offload bench.jobs=2 bench.parallel_builds=2
cp /tmp/b/bench/bench.json /tmp/levers-bench.json
