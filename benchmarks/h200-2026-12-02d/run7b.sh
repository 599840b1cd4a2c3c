#!/bin/bash
# Call B of run7a.sh's two (carry [".whl-fa4/b"], within 30 s of call A): joins the halves, installs FlashAttention-4
# and its runtime into /tmp/site, and runs fa4_probe.py (FA4's kernels compiled once, cached on disk).
cd "$(dirname "$0")/../.." || exit 1
[ -f /tmp/fa4/cu13.tar.xz.part-aa ] || { echo "no first half in /tmp/fa4: a fresh machine; run run7a.sh first"; exit 3; }
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
  .whl-fa4/b/*.whl || exit 1
cat /tmp/fa4/cu13.tar.xz.part-aa .whl-fa4/b/cu13.tar.xz.part-ab | sha256sum | cut -c1-16 > $OUT/env.txt
cat /tmp/fa4/cu13.tar.xz.part-aa .whl-fa4/b/cu13.tar.xz.part-ab | xz -d | tar -x -C /tmp/site || exit 1  # after pip
export PYTHONPATH=/tmp/site FLASH_ATTENTION_CUTE_DSL_CACHE_ENABLED=1 FLASH_ATTENTION_CUTE_DSL_CACHE_DIR=/tmp/fa4cache
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader >> $OUT/env.txt
python3 -c "import flash_attn.cute.interface as i; print('fa4 imports')" >> $OUT/env.txt 2>&1
timeout 420 python3 benchmarks/h200-2026-12-02d/fa4_probe.py $OUT/fa4.json > $OUT/fa4.log 2>&1; echo "probe rc=$?" >> $OUT/env.txt
cat $OUT/env.txt; tail -c 6000 $OUT/fa4.log
