#!/bin/bash
# Device call 2 (nvidia-h200; issue 11): where a compiled step and an 8-frame decode go with the temporal blocks in
# 2-D (profile.py), and GEGLU projection kernels at SVD-XT's three widths (geglu_tiles.py), side by side.
cd "$(dirname "$0")/../.."
python3 -m pip install -q --no-index --no-deps --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 TORCHINDUCTOR_CACHE_DIR=/tmp/ind
D=benchmarks/h200-2026-12-01
timeout 200 python3 $D/geglu_tiles.py $OUT/geglu-tiles.json > $OUT/geglu-tiles.log 2>&1; echo "geglu rc=$?" >> $OUT/geglu-tiles.log
timeout 330 python3 $D/step_profile.py $OUT/profile-temporal2d.json hardware.temporal_blocks_2d=true > $OUT/profile.log 2>&1
echo "profile rc=$?" >> $OUT/profile.log
cat $OUT/geglu-tiles.log | grep -v Warning | tail -60; tail -5 $OUT/profile.log
