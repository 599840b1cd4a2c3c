#!/bin/bash
# Device call 3 (nvidia-h200 or an H100; issue 11), NOT RUN: refused on 2026-12-01 (no machine lent). The bench with
# the seed recipe beside h100 (temporal blocks in 2-D now on), h100 + the fused GEGLU kernel, h100 + the VAE decoder's
# group norms in rows, and h100_fast; frames compared with the seed recipe (eager fp16).
cd "$(dirname "$0")/../.."
python3 -m pip install -q --no-index --no-deps --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 SVD_BATCH_CACHE=/tmp/svdcache
B=/tmp/b; mkdir -p $B; T1=$(date +%s)
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader > $OUT/env.txt
timeout 555 python3 -m svd_batch.bench output_dir=$B/bench 'bench.seed_recipes=[seed_offload]' \
  'bench.profiles=[h100,"h100 hardware.fused_geglu=true","h100 hardware.vae_norms_in_rows=true",h100_fast]' \
  bench.reference=seed_offload bench.jobs=2 bench.parallel_builds=5 > $B/bench.log 2>&1
echo "bench rc=$? $(( $(date +%s) - T1 )) s" >> $OUT/env.txt
cp $B/bench/bench.json $B/bench/bench.md $OUT/ 2>/dev/null
{ echo "== bench.log"; tr '\r' '\n' < $B/bench.log | grep -v "videos:\|^\s*$" | tail -c 60000
  for f in $SVD_BATCH_CACHE/compiled/artifacts/*.log; do echo "== $f"; tail -3 $f; done; } > $OUT/logs.txt
cat $OUT/env.txt $OUT/bench.md 2>/dev/null; grep -i "error\|traceback" $OUT/logs.txt | head -20
