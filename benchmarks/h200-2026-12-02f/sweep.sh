# Sourced by run2.sh and run3.sh: `sweep_call SECONDS MODE` runs the bench's seed recipe (1 warm-up + 1 timed video)
# and then the sweep MODE (cold: an empty cache; warm: the cache the cold sweep left) over 3 images x 4
# motion_bucket_id x 2 seeds, `python run.py model=svd_xt model.init=random hardware=auto`, W&B offline; the cache is
# /tmp/sweepcache, kept between the calls of one machine. Leaves the sweep's log, index and artifact build logs in $OUT.
source benchmarks/h200-2026-12-01c/common.sh
source benchmarks/h200-2026-12-02f/fa4_site.sh
sweep_call() {
  local limit=$1 mode=$2
  bench_call $limit 'bench.seed_recipes=[seed_offload]' 'bench.profiles=[]' "bench.sweep.modes=[$mode]" \
    bench.sweep.cache_dir=/tmp/sweepcache bench.reference=seed_offload bench.jobs=1
  tr '\r' '\n' < /tmp/b/bench/sweep-$mode.log | grep -v "^videos:\|^\s*$" > $OUT/sweep-$mode.log
  cp /tmp/b/bench/sweep-$mode/index.csv $OUT/sweep-$mode-index.csv 2>/dev/null
  for f in /tmp/sweepcache/compiled/artifacts/*.log; do echo "== $f"; tail -5 $f; done > $OUT/builds.txt 2>&1
  grep -h "compiled\|FlashAttention\|hardware\|auto" $OUT/sweep-$mode.log | cut -c1-220 | head -20
}
