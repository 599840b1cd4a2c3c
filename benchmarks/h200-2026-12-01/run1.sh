#!/bin/bash
# Device call 1 (nvidia-h200; issue 11): the bench with the seed recipe beside h100 and h100 with the temporal res
# blocks in 2-D (per-frame norm statistics, Conv3d as Conv2d; UNet and VAE decoder), 3 timed videos each so the
# steady-state interval is measured over two videos; frames compared with h100's.
cd "$(dirname "$0")/../.."
python3 -m pip install -q --no-index --no-deps --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 SVD_BATCH_CACHE=/tmp/svdcache
B=/tmp/b; mkdir -p $B; T1=$(date +%s)
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  python3 -c "import torch, cv2, skimage; print('torch', torch.__version__, 'cv2', cv2.__version__, 'skimage', skimage.__version__)"; } > $OUT/env.txt
timeout 540 python3 -m svd_batch.bench output_dir=$B/bench 'bench.seed_recipes=[seed_offload]' \
  'bench.profiles=[h100,"h100 hardware.temporal_blocks_2d=true"]' bench.reference=h100 bench.jobs=3 \
  bench.parallel_builds=4 > $B/bench.log 2>&1
echo "bench rc=$? $(( $(date +%s) - T1 )) s" >> $OUT/env.txt
cp $B/bench/bench.json $B/bench/bench.md $OUT/ 2>/dev/null
ls $SVD_BATCH_CACHE/compiled/artifacts/ > $OUT/artifacts.txt 2>&1
{ echo "== bench.log"; tr '\r' '\n' < $B/bench.log | grep -v "videos:\|^\s*$" | tail -c 60000
  for f in $SVD_BATCH_CACHE/compiled/artifacts/*.log; do echo "== $f"; tail -5 $f; done; } > $OUT/logs.txt
cat $OUT/env.txt $OUT/bench.md 2>/dev/null; grep -i "error\|traceback" $OUT/logs.txt | head -20
