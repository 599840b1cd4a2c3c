#!/bin/bash
# Call 1b (carry [".whl-fa4/b"], within 30 s of run1a.sh): joins the halves and installs FlashAttention-4
# (flash-attn-4 4.0.0b36, nvidia-cutlass-dsl 4.8.1 with -libs-base, -libs-core and -libs-cu13, apache-tvm-ffi,
# torch-c-dlpack-ext, quack-kernels) into /tmp/site, then: fa4_probe.py (the kernel against SDPA's backends at SVD-XT's
# spatial shapes), fa4_load.py twice (a fresh process's import and first call: with an empty kernel cache, then
# loading it from the cache), and fa4_step.py (one compiled UNet step, cuDNN against FlashAttention-4, whose result
# /tmp/fa4-step.json decides whether the next calls put it in the `h100` profile: fa4_env.sh).
cd "$(dirname "$0")/../.." || exit 1
[ -f /tmp/fa4/cu13.tar.xz.part-aa ] || { echo "no first half in /tmp/fa4: a fresh machine; run run1a.sh first"; exit 3; }
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
  .whl-fa4/b/*.whl /tmp/fa4/*.whl || exit 1
cat /tmp/fa4/cu13.tar.xz.part-aa .whl-fa4/b/cu13.tar.xz.part-ab | sha256sum | cut -c1-16 > $OUT/env.txt
cat /tmp/fa4/cu13.tar.xz.part-aa .whl-fa4/b/cu13.tar.xz.part-ab | xz -d | tar -x -C /tmp/site || exit 1  # after pip
H=benchmarks/h200-2026-12-02e
export PYTHONPATH=/tmp/site:/tmp/site/nvidia_cutlass_dsl/dsl_packages:$PWD PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader >> $OUT/env.txt
export FLASH_ATTENTION_CUTE_DSL_CACHE_ENABLED=1 FLASH_ATTENTION_CUTE_DSL_CACHE_DIR=/tmp/fa4cache-load
for n in compile cached; do timeout 120 python3 $H/fa4_load.py > $OUT/load-$n.json 2> $OUT/load-$n.err; echo "load $n rc=$?" >> $OUT/env.txt; done
export FLASH_ATTENTION_CUTE_DSL_CACHE_DIR=/tmp/fa4cache
timeout 200 python3 $H/fa4_probe.py $OUT/fa4.json > $OUT/fa4.log 2>&1; echo "probe rc=$?" >> $OUT/env.txt
unset FLASH_ATTENTION_CUTE_DSL_CACHE_ENABLED FLASH_ATTENTION_CUTE_DSL_CACHE_DIR  # svd-batch points it at its cache
timeout 420 python3 $H/fa4_step.py $OUT/fa4-step.json > $OUT/fa4-step.log 2>&1; echo "step rc=$?" >> $OUT/env.txt
cp $OUT/fa4-step.json /tmp/fa4-step.json
cat $OUT/env.txt $OUT/load-*.json; tail -c 3000 $OUT/fa4.log; grep -v "^\s*$" $OUT/fa4-step.log | tail -c 4000
